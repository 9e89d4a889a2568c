"""Wall time of the fit stage on a default workspace: fit, significance, limit and ranking.

Reads ``results/fit/{discriminant}/workspace.json`` of a finished default run (default: the
headline discriminant), then times, each in its own spawned interpreter (imports done before the
timer, no shared caches) the four steps the issue's target covers: the MINOS fit of the
pseudo-data, the observed/expected significance, the CLs limit with its bands and the impact
ranking. Prints
the times and their sum against the 60 s target; never asserts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cabinetry
from _common import add_json_argument, load_config, print_table, run_isolated, save_json

from thetaflow.core import paths
from thetaflow.inference.beyond import ranking, significance_and_limit
from thetaflow.inference.fit import checked_fit, load_model, par_bounds

TARGET_S = 60.0


def _fit(config: dict, workspace: str, out: str) -> None:
    model, data = load_model(workspace)
    checked_fit(
        model,
        data,
        model.config.channels[0],
        minos=["mu"],
        par_bounds=par_bounds(model, config["inference"]["poi_bounds"]),
    )


def _significance(config: dict, workspace: str, out: str) -> None:
    model, data = load_model(workspace)
    cabinetry.fit.significance(
        model, data, par_bounds=par_bounds(model, config["inference"]["poi_bounds"])
    )


def _limit(config: dict, workspace: str, out: str) -> None:
    # the rule's function also repeats the significance (~1 s); timed as the rule runs it
    significance_and_limit(
        config, workspace, {"results": f"{out}/limit.json", "figure": f"{out}/limit.png"}
    )


def _ranking(config: dict, workspace: str, out: str) -> None:
    ranking(config, workspace, {"results": f"{out}/ranking.json", "figure": f"{out}/ranking.png"})


STEPS = {
    "fit (MINOS on mu)": _fit,
    "significance": _significance,
    "limit + significance": _limit,
    "ranking": _ranking,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--results",
        type=Path,
        default=Path(paths.RESULTS),
        help="results directory of a default run",
    )
    parser.add_argument("--discriminant", help="default: inference.headline of the config")
    add_json_argument(parser, "inference")
    args = parser.parse_args(argv)
    config = load_config()
    name = args.discriminant or config["inference"]["headline"]
    workspace = args.results / "fit" / name / "workspace.json"
    if not workspace.exists():
        print(f"{workspace} missing: run `bash workflow/bootstrap.sh analysis` first")
        return 1
    rows, wall, cpu = [], {}, {}
    with tempfile.TemporaryDirectory() as out:
        for label, step in STEPS.items():
            measured = run_isolated(step, config, str(workspace), out)
            wall[label], cpu[label] = measured.wall_s, measured.cpu_s
            rows.append([label, round(measured.wall_s, 2), round(measured.cpu_s, 2)])
    # the significance is part of the limit rule; count it once
    steps = ("fit (MINOS on mu)", "limit + significance", "ranking")
    total_wall, total_cpu = sum(wall[s] for s in steps), sum(cpu[s] for s in steps)
    rows.append(
        ["total (fit + significance + limit + ranking)", round(total_wall, 2), round(total_cpu, 2)]
    )
    print_table(
        f"Fit stage on results/fit/{name}/workspace.json (target <= {TARGET_S:.0f} s); CPU time is "
        "the fair figure on a loaded machine",
        ["step", "wall s", "cpu s"],
        rows,
    )
    save_json(
        args.json,
        {
            "discriminant": name,
            "wall_s": wall,
            "cpu_s": cpu,
            "total_wall_s": total_wall,
            "total_cpu_s": total_cpu,
            "target_s": TARGET_S,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
