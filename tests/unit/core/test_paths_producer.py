"""thetaflow.core.paths.producer: every results path maps back to the rule that writes it,
checked against the rules' outputs in workflow/rules/*.smk."""

from __future__ import annotations

import re

import pytest

from thetaflow.core import paths
from thetaflow.core.paths import Producer, producer


def rule_outputs(repo_root) -> dict[str, list[str]]:
    """Each rule's output paths, filled with 'x', as spelled in workflow/rules/*.smk."""
    outputs = {}
    for smk in sorted((repo_root / "workflow" / "rules").glob("*.smk")):
        for name, body in re.findall(r"^rule (\w+):\n((?:    .*\n|\n)*)", smk.read_text(), re.M):
            section = re.search(r"^    output:\n((?:        .*\n|\n)*)", body, re.M)
            spelled = re.findall(r"paths\.([A-Z_]+)|score_dir\(\"([^\"]*)\"\)", section.group(1))
            outputs[name] = [
                getattr(paths, const) if const else paths.SCORE_DIR.format(model=model)
                for const, model in spelled
            ]
    return {
        name: [re.sub(r"\{\w+\}", "x", template) for template in templates]
        for name, templates in outputs.items()
    }


def test_every_rule_output_maps_back_to_its_rule(repo_root):
    outputs = rule_outputs(repo_root)
    assert len(outputs) > 30 and all(outputs.values())
    for rule, files in outputs.items():
        for path in files:
            made = producer(path)
            assert made is not None and rule in made.rules, (rule, path, made)
            assert made.output == path


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "results/events/zh/nominal.parquet",
            Producer(("ingest_simulation", "ingest_data"), "results/events/zh/nominal.parquet"),
        ),
        ("results/models/bdt/fold0/model.ubj", Producer(("train",), "results/models/bdt/fold0")),
        (
            "results/models/autoencoder/fold1/model.keras",
            Producer(("train_autoencoder",), "results/models/autoencoder/fold1"),
        ),
        (
            "results/scores/autoencoder/zh/nominal.parquet",
            Producer(("score_autoencoder",), "results/scores/autoencoder"),
        ),
        ("results/scores/nn/zh/jes_up.parquet", Producer(("score",), "results/scores/nn")),
        (
            "/run/results/fit/nn/workspace.json",
            Producer(("workspace",), "/run/results/fit/nn/workspace.json"),
        ),
        (
            "results/regression/model_half1.ubj",
            Producer(("bjet_regression",), "results/regression/model_half1.ubj"),
        ),
    ],
)
def test_paths_inside_directory_outputs_and_absolute_paths(path, expected):
    assert producer(path) == expected


def test_paths_no_rule_writes():
    assert producer("/tmp/table.parquet") is None
    assert producer("results/fit/nn/unknown.json") is None
    assert producer(paths.log("ingest/zh")) is None
