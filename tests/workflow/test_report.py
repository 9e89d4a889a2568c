"""The HTML report: every report() output of every rule is captioned and filed under one of
the analysis' categories, and `snakemake --report` builds one page from the toy run whose
front page states the headline numbers."""

from __future__ import annotations

import json
import re

import pytest
from conftest import REPO

RULES = sorted((REPO / "workflow/rules").glob("*.smk"))
CATEGORIES = {
    "Samples and control plots",
    "Supervised",
    "Unsupervised",
    "Benchmarks",
    "Statistical inference",
}
REPORT_CALL = re.compile(r"report\(\s*(.*?)\n\s*\),", re.S)


def report_calls() -> list[tuple[str, dict[str, str]]]:
    """(file, {caption, category, ...}) of every report(...) call in the rule files."""
    calls = []
    for path in RULES:
        for body in REPORT_CALL.findall(path.read_text()):
            calls.append((path.name, dict(re.findall(r'(\w+)="([^"]*)"', body))))
    return calls


def test_every_report_item_has_a_caption_file_and_a_known_category():
    calls = report_calls()
    assert len(calls) > 10
    for name, args in calls:
        assert args.get("category") in CATEGORIES, (name, args)
        caption = (REPO / "workflow/rules" / args.get("caption", "missing")).resolve()
        assert caption.is_file() and caption.read_text().strip(), (name, args.get("caption"))


@pytest.mark.workflow
def test_report_of_the_toy_run_has_every_category(toy_run, toy_report):
    html = toy_report.read_text(errors="replace")
    assert toy_report.stat().st_size > 100_000
    # the front page renders cleanly (docutils writes its warnings into the page) and states
    # the run's headline numbers (rule report_front_page)
    assert "System Message" not in html
    assert "Headline numbers of this run" in html
    headline = json.loads((toy_run / "results/summary.json").read_text())["headline"]
    assert f"{headline['discriminant']} (headline)" in html
    used = {args["category"] for _, args in report_calls()}
    for category in used:
        assert category in html, category
