"""The report's front page: the description plus the headline numbers, valid reStructuredText."""

from __future__ import annotations

import json

from docutils.core import publish_parts

from thetaflow.operations.report import front_page, write_front_page

# what `snakemake --report` appends to the front page before rendering it (its own panels and
# one target per category): a category named like a panel breaks the page
SNAKEMAKE_TARGETS = """
.. _Workflow: javascript:show_panel('workflow')
.. _Statistics: javascript:show_panel('statistics')
.. _Statistical inference: javascript:app.showCategory('Statistical%20inference')
"""


def _numbers(name: str, mu: float, minos: dict | None) -> dict:
    return {
        "discriminant": name,
        "mu": mu,
        "mu_minos": minos,
        "mu_hesse": 0.25,
        "goodness_of_fit_p_value": 0.42,
        "significance": {"observed": 3.14159, "expected": 2.71828},
        "upper_limit_95": {"observed": 1.875, "expected": {"median": 0.931, "-1sigma": 0.6}},
    }


SUMMARY = {
    "analysis": "zh_llbb",
    "lumi_fb": 30.0,
    "data_sample": "data",
    "headline": _numbers("nn", 1.0123, {"down": -0.2011, "up": 0.2234}),
    "reference": _numbers("m_bb", 0.8771, None),
    "best_expected": {
        "discriminant": "bdt",
        "expected_significance": 4.6,
        "ratio_to_reference": 1.77,
    },
}


def _html(rst: str) -> str:
    parts = publish_parts(rst + SNAKEMAKE_TARGETS, writer="html")
    return parts["html_body"]


def test_front_page_states_the_headline_numbers_and_renders_cleanly():
    html = _html(front_page("The workflow, described.", SUMMARY))
    assert "System Message" not in html  # docutils' warnings are rendered into the page
    assert "The workflow, described." in html
    # μ̂ with MINOS errors for the headline, with the Hesse error where MINOS is absent
    assert "1.012 -0.201 / +0.223" in html
    assert "0.877 ± 0.250" in html
    assert "3.14σ / 2.72σ" in html and "1.875 / 0.931" in html
    assert "nn (headline)" in html and "m_bb (reference)" in html
    assert "<strong>bdt</strong>" in html and "1.77×" in html


def test_the_shipped_description_renders_without_warnings(repo_root):
    description = (repo_root / "workflow/report/workflow.rst").read_text(encoding="utf-8")
    assert "System Message" not in _html(front_page(description, SUMMARY))


def test_write_front_page_writes_the_rendered_text(tmp_path):
    description, summary = tmp_path / "workflow.rst", tmp_path / "summary.json"
    description.write_text("Described.\n", encoding="utf-8")
    summary.write_text(json.dumps(SUMMARY), encoding="utf-8")
    output = tmp_path / "report" / "front_page.rst"
    write_front_page(description, summary, output)
    assert output.read_text(encoding="utf-8") == front_page("Described.\n", SUMMARY)
