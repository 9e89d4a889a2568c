"""Wall time of 1,000 toys fitted at once (batched Newton on JAX) against MINUIT one at a time.

The toys of the closure and injection rules are fitted twice each (μ free and μ = μ₀). This
benchmark samples ``--toys`` toys at μ₀ as :mod:`thetaflow.inference.closure` does and times

* the batched fits of :mod:`thetaflow.inference.batched_fits` (free + conditional), once cold
  (the compilation included) and once warm (the compiled step reused, as the next μ₀ would);
* MINUIT one toy at a time (the closure rules' path before batching), on ``--minuit-toys``
  and ``--minuit-toys // 5`` of the same toys, so the time per toy and the fixed cost (JAX
  compilation) can be told apart and extrapolated to ``--toys``;

each in its own spawned interpreter, and compares μ̂ and the likelihood pull of the toys both
paths fitted. The workspace is ``--workspace`` (e.g. ``results/fit/nn/workspace.json`` of a
default run, the issue's "default headline workspace"); without one, a workspace of the
default's shape is built with the workflow's own builder (the default config's binning,
normalisation and shape/weight systematics, per-bin MC statistical uncertainties) from
synthetic templates of the default processes. Prints the figures and writes JSON; never
asserts on timings.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyhf
from _common import (
    add_json_argument,
    environment,
    load_config,
    positive_int,
    print_table,
    run_isolated,
    save_json,
    scratch_dir,
)

from thetaflow.inference.batched_fits import BatchedLikelihood, fit_toys_batched, minuit_fit
from thetaflow.inference.closure import sample_toys, toy_seed
from thetaflow.inference.fit import load_model, par_bounds
from thetaflow.inference.histograms import (
    ProcessTemplates,
    TemplateSet,
    counts_histogram,
    histogram,
)
from thetaflow.inference.workspace import build_workspace

TARGET_S = 60.0

#: Synthetic discriminant shapes of the default processes: kind, Beta(a, b) of the score,
#: MC events and weight per event (expected yields ~ those of a default run's nn score).
PROCESSES = {
    "zh": ("signal", (6.0, 1.2), 20_000, 0.01),
    "zz": ("background", (2.5, 2.0), 20_000, 0.03),
    "zjets": ("background", (1.0, 4.0), 200_000, 0.1),
    "ttbar": ("background", (1.5, 2.5), 60_000, 0.08),
}
#: Relative weight shift of each weight systematic's up template (down: the opposite).
WEIGHT_SHIFT = 0.04
#: Relative shift of the score in a shape systematic's up template (down: the opposite).
SHAPE_SHIFT = 0.03


def _template(edges: np.ndarray, x: np.ndarray, w: np.ndarray):
    """A weighted template of ``x`` (clipped into the range)."""
    x = np.clip(x, edges[0], np.nextafter(edges[-1], edges[0]))
    values, _ = np.histogram(x, edges, weights=w)
    sumw2, _ = np.histogram(x, edges, weights=w**2)
    return histogram(edges, values, sumw2)


def synthetic_templates(config: Mapping, seed: int = 7) -> TemplateSet:
    """Fine templates of the default processes, data a Poisson draw at μ = 1, with an up and
    down template for every systematic of ``inference.systematics``."""
    inf = config["inference"]
    rng = np.random.default_rng(seed)
    edges = np.linspace(0.0, 1.0, inf["binning"]["fine_bins"] + 1)
    processes = {}
    for name, (kind, (a, b), n, weight) in PROCESSES.items():
        x = rng.beta(a, b, n)
        w = np.full(n, weight)
        templates = {"nominal": _template(edges, x, w)}
        for syst, spec in inf["systematics"].items():
            for direction, sign in (("up", 1.0), ("down", -1.0)):
                if spec["type"] == "shape":
                    varied = _template(edges, x * (1 + sign * SHAPE_SHIFT), w)
                else:
                    varied = _template(edges, x, w * (1 + sign * WEIGHT_SHIFT * (1 - x)))
                templates[f"{syst}_{direction}"] = varied
        processes[name] = ProcessTemplates(kind, templates)
    expected = sum(p.nominal.values() for p in processes.values())
    data = counts_histogram(edges, rng.poisson(expected).astype(float))
    return TemplateSet(inf["headline"], "nn score", "data", data, processes)


def default_shape_workspace(config: Mapping, folder: Path) -> Path:
    """Build ``folder/workspace.json`` from :func:`synthetic_templates` with the workflow's
    builder and the default config; return its path."""
    fine = folder / "histograms.json"
    synthetic_templates(config).save(str(fine))
    outputs = {
        "workspace": str(folder / "workspace.json"),
        "binning": str(folder / "binning.json"),
        "cabinetry": str(folder / "cabinetry.yaml"),
        "templates": str(folder / "templates"),
    }
    build_workspace(config, str(fine), outputs)
    return Path(outputs["workspace"])


def _toys(workspace: str, mu0: float, n: int, seed: int) -> np.ndarray:
    """The toys the closure fits for (μ₀, seed): sampled on the NumPy backend."""
    pyhf.set_backend("numpy")
    model, _ = load_model(workspace)
    return sample_toys(model, mu0, n, seed)


def _batched(
    workspace: str, poi_bounds: list, mu0: float, n: int, seed: int, n_compared: int
) -> dict:
    """Cold and warm wall time of the batched free + conditional fits of ``n`` toys; then
    (untimed) the rows of the ``n_compared`` toys the one-at-a-time path fits for that seed
    (a smaller draw: its toys are not the first rows of the large one)."""
    toys, toys_compared = _toys(workspace, mu0, n, seed), _toys(workspace, mu0, n_compared, seed)
    pyhf.set_backend("jax")
    start = time.perf_counter()
    model, _ = load_model(workspace)
    fitter = BatchedLikelihood(model, par_bounds(model, poi_bounds))
    fits = fit_toys_batched(fitter, toys, mu0)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    fit_toys_batched(fitter, toys, mu0)
    warm = time.perf_counter() - start
    compared = fit_toys_batched(fitter, toys_compared, mu0)
    both = np.concatenate([fits.free.iterations, fits.fixed.iterations])
    return {
        "cold_s": cold,
        "warm_s": warm,
        "parameters": int(model.config.npars),
        "bins": int(model.config.nmaindata),
        "converged": int(fits.converged.sum()),
        "with_uncertainty": int(fits.has_uncertainty.sum()),
        "refitted_by_minuit": int(fits.free.refitted.sum() + fits.fixed.refitted.sum()),
        "newton_iterations_mean": float(both.mean()),
        "newton_iterations_max": int(both.max()),
        "rows": compared.rows(),
    }


def _one_at_a_time(workspace: str, poi_bounds: list, mu0: float, n: int, seed: int) -> np.ndarray:
    """MINUIT one toy at a time on the JAX backend (μ free, then μ = μ₀; strategy 1, then 2),
    as the closure rules fitted toys before they were batched: rows (μ̂, σ̂, pull, usable)."""
    toys = _toys(workspace, mu0, n, seed)
    pyhf.set_backend("jax")
    model, _ = load_model(workspace)
    bounds = np.asarray(par_bounds(model, poi_bounds), dtype=float)
    poi = model.config.poi_index
    init = np.asarray(model.config.suggested_init(), dtype=float)
    init[poi] = mu0
    rows = []
    for toy in toys:
        free, fixed = (
            minuit_fit(model, toy, init, bounds),
            minuit_fit(model, toy, init, bounds, mu0),
        )
        if free is None or fixed is None or not np.isfinite(free[1][poi]) or free[1][poi] <= 0:
            rows.append([np.nan, np.nan, np.nan, 0.0])
            continue
        mu, sigma = free[0][poi], free[1][poi]
        pull = np.sign(mu - mu0) * np.sqrt(max(fixed[2] - free[2], 0.0))
        rows.append([mu, sigma, pull, 1.0])
    return np.array(rows, dtype=float)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workspace", type=Path, help="default: a workspace of the default's shape"
    )
    parser.add_argument("--toys", type=positive_int, default=1000, help="batched toys")
    parser.add_argument(
        "--minuit-toys", type=positive_int, default=50, help="toys fitted one at a time"
    )
    parser.add_argument("--mu0", type=float, default=1.0, help="μ the toys are made at")
    parser.add_argument("--keep", action="store_true", help="keep the built workspace")
    add_json_argument(parser, "batched_toys")
    args = parser.parse_args(argv)
    config = load_config()
    inf = config["inference"]
    bounds = list(inf["poi_bounds"])
    env = environment()
    with scratch_dir("batched_toys_", None, args.keep) as scratch:
        workspace = args.workspace or default_shape_workspace(config, scratch)
        region = load_model(str(workspace))[0].config.channels[0]
        seed = toy_seed(inf["closure"]["seed"], region, args.mu0)
        batched = run_isolated(
            _batched, str(workspace), bounds, args.mu0, args.toys, seed, args.minuit_toys
        )
        small = max(1, args.minuit_toys // 5)
        minuit = {
            n: run_isolated(_one_at_a_time, str(workspace), bounds, args.mu0, n, seed)
            for n in (small, args.minuit_toys)
        }
    b = batched.result
    t_small, t_large = minuit[small].wall_s, minuit[args.minuit_toys].wall_s
    per_toy = (t_large - t_small) / max(1, args.minuit_toys - small)
    fixed_cost = max(0.0, t_small - small * per_toy)
    extrapolated = fixed_cost + args.toys * per_toy
    # agreement on the toys both paths fitted
    ref, new = minuit[args.minuit_toys].result, b["rows"]
    both = (ref[:, 3] == 1) & (new[:, 3] == 1)
    dmu_sigma = np.abs(new[both, 0] - ref[both, 0]) / ref[both, 1]
    dpull = np.abs(new[both, 2] - ref[both, 2])
    rows = [
        [f"batched, {args.toys} toys, cold (compilation included)", round(b["cold_s"], 2)],
        [f"batched, {args.toys} toys, warm (compiled)", round(b["warm_s"], 2)],
        [f"MINUIT one at a time, {small} toys", round(t_small, 2)],
        [f"MINUIT one at a time, {args.minuit_toys} toys", round(t_large, 2)],
        [f"MINUIT, {args.toys} toys extrapolated (1 worker)", round(extrapolated, 1)],
        [
            f"MINUIT, {args.toys} toys extrapolated (2 workers, ideal)",
            round(fixed_cost + args.toys * per_toy / 2, 1),
        ],
    ]
    print_table(
        f"{args.toys} toys at mu0 = {args.mu0:g}, free + conditional fits, {b['parameters']} "
        f"parameters, {b['bins']} bins (target <= {TARGET_S:.0f} s on 2 cores; load average "
        f"{env['load_average_1min_at_start']:.2f} at start)",
        ["path", "wall s"],
        rows,
    )
    print(
        f"\nbatched: {b['converged']}/{args.toys} converged ({b['with_uncertainty']} with a "
        f"finite sigma), {b['refitted_by_minuit']} fits "
        f"refitted by MINUIT, Newton iterations mean {b['newton_iterations_mean']:.1f}, "
        f"max {b['newton_iterations_max']}"
    )
    print(
        f"agreement on {both.sum()} toys: max |d mu_hat|/sigma {dmu_sigma.max():.2e}, "
        f"max |d pull| {dpull.max():.2e} (MINUIT at pyhf's default tolerance)"
    )
    save_json(
        args.json,
        {
            "workspace": str(args.workspace) if args.workspace else "default-shaped (synthetic)",
            "toys": args.toys,
            "mu0": args.mu0,
            "parameters": b["parameters"],
            "bins": b["bins"],
            "batched_cold_s": b["cold_s"],
            "batched_warm_s": b["warm_s"],
            "batched_cpu_s": batched.cpu_s,
            "batched_converged": b["converged"],
            "batched_with_uncertainty": b["with_uncertainty"],
            "batched_refitted_by_minuit": b["refitted_by_minuit"],
            "newton_iterations_mean": b["newton_iterations_mean"],
            "newton_iterations_max": b["newton_iterations_max"],
            "minuit_toys": {str(small): t_small, str(args.minuit_toys): t_large},
            "minuit_per_toy_s": per_toy,
            "minuit_fixed_cost_s": fixed_cost,
            "minuit_extrapolated_s": extrapolated,
            "agreement": {
                "toys": int(both.sum()),
                "max_abs_dmu_over_sigma": float(dmu_sigma.max()),
                "max_abs_dpull": float(dpull.max()),
            },
            "target_s": TARGET_S,
            "environment": env,
            "load_average_1min_at_end": os.getloadavg()[0],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
