"""The HTML report's front page: the workflow's description, then the run's headline numbers.

Snakemake renders the front page from one reStructuredText file (the Snakefile's ``report:``)
and has no access to the run's results; this module writes that file from the description in
``workflow/report/workflow.rst`` and ``results/summary.json``, so the page a person opens first
states μ̂, the significances and the limits of the headline and reference discriminants.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from thetaflow.core.io import atomic_path, read_json


def _mu(numbers: Mapping[str, Any]) -> str:
    """μ̂ with its MINOS interval (the Hesse error where MINOS did not run)."""
    minos = numbers.get("mu_minos")
    if minos:
        return f"{numbers['mu']:.3f} {minos['down']:+.3f} / {minos['up']:+.3f}"
    return f"{numbers['mu']:.3f} ± {numbers['mu_hesse']:.3f}"


def _row(role: str, numbers: Mapping[str, Any]) -> str:
    """One discriminant's row of the headline table."""
    significance, limit = numbers["significance"], numbers["upper_limit_95"]
    cells = [
        f"{numbers['discriminant']} ({role})",
        _mu(numbers),
        f"{significance['observed']:.2f}σ / {significance['expected']:.2f}σ",
        f"{limit['observed']:.3f} / {limit['expected']['median']:.3f}",
        f"{numbers['goodness_of_fit_p_value']:.3f}",
    ]
    return "   * - " + "\n     - ".join(cells)


def front_page(description: str, summary: Mapping[str, Any]) -> str:
    """The front page's reStructuredText: ``description`` and the headline-number table."""
    best = summary["best_expected"]
    header = [
        "discriminant",
        "μ̂ (68 % interval)",
        "significance observed / expected",
        "95 % CL upper limit on μ, observed / expected",
        "goodness-of-fit p-value",
    ]
    table = "\n".join(
        [
            ".. list-table::",
            "   :header-rows: 1",
            "",
            "   * - " + "\n     - ".join(header),
            _row("headline", summary["headline"]),
            _row("reference", summary["reference"]),
        ]
    )
    return (
        f"{description.rstrip()}\n\n"
        f"**Headline numbers of this run** ({summary['analysis']}, "
        f"{summary['lumi_fb']:g} fb⁻¹, data sample ``{summary['data_sample']}``; "
        "``results/summary.json`` holds them all):\n\n"
        f"{table}\n\n"
        f"The most sensitive discriminant is **{best['discriminant']}**: expected "
        f"significance {best['expected_significance']:.2f}σ, "
        f"{best['ratio_to_reference']:.2f}× the reference's.\n"
    )


def write_front_page(description: Path, summary: Path, output: Path) -> None:
    """Write :func:`front_page` of the description file and the summary JSON to ``output``."""
    text = front_page(description.read_text(encoding="utf-8"), read_json(summary))
    with atomic_path(output) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
