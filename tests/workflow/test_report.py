"""The HTML report: every report() output of every rule is captioned and filed under one of
the analysis' categories, and `snakemake --report` builds one page from the toy run."""

from __future__ import annotations

import re

import pytest
from conftest import REPO, TOY_CONFIG, run_snakemake

RULES = sorted((REPO / "workflow/rules").glob("*.smk"))
CATEGORIES = {"Samples and control plots", "Supervised", "Unsupervised", "Benchmarks", "Statistics"}
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
def test_report_of_the_toy_run_has_every_category(toy_run):
    report = toy_run / "results/report.html"
    result = run_snakemake(
        "--report",
        str(report),
        "--directory",
        str(toy_run),
        "--configfile",
        str(TOY_CONFIG),
        cwd=toy_run,
        timeout=600,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    html = report.read_text(errors="replace")
    assert report.stat().st_size > 100_000
    used = {args["category"] for _, args in report_calls()}
    for category in used:
        assert category in html, category
