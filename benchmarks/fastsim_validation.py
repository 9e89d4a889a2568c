"""Learned fast simulation of jets (issue 18 item 3): fast against full simulation, and speed.

1. **Training.** ``--training-events`` filter-passing Z+jets events through the full detector,
   without the skim (:func:`~thetaflow.simulation.fastsim.simulate_training_events`), train the
   flow, the efficiency network and the tables (:func:`train_jet_fastsim`) with the
   ``fastsim`` settings of the default config's schema (``--epochs`` and the others override).
2. **Jets.** ``--validation-events`` further events (their own random stream) through the full
   detector; the same events' GenJets through the fast simulation. Per reco jet: p_T, η, φ,
   mass, b-tag and its GenJet's p_T, η and flavour. Wasserstein-1 distances per variable
   (units and over the full sample's standard deviation), the p_T response (reco/GenJet p_T)
   median and width (half the 16-84 % interval) in GenJet p_T bins, jets per event, and a
   classifier two-sample test (sklearn histogram GBDT, held-out half, the full and fast
   versions of an event on the same side).
3. **Selected events.** One chunk of ``--event-level-events`` Z+jets events written as the
   ``simulate`` rule writes it, full and fast (:func:`simulate_fastsim_chunk`: the same truth
   and leptons, fast jets, MET with the jets' change), both ingested and turned into features
   as the workflow does (selection, regions, the 23 features); per feature the Wasserstein
   distance and a two-sample test on the selected events (paired by event number), plus the
   cutflow, the selected counts and Σw.
4. **Speed.** The detector (:func:`~thetaflow.simulation.detector.reconstruct`, leptons, jets
   and MET) against the fast jets (:func:`fastsim_jets`: efficiency, flow, tables, MET) on the
   same ``--speed-events`` events, best of ``--repeats``, in events/s and jets/s; and the flow
   alone (one draw per GenJet) in jets/s. One process, TensorFlow's default threads.

Usage::

    python benchmarks/fastsim_validation.py [--training-events 150000] [--epochs 20] [--json PATH]

Prints the figures and writes them as JSON; never asserts.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path

import awkward as ak
import numpy as np
import pyarrow.parquet as pq
from _common import (
    add_json_argument,
    environment,
    ingest_files,
    load_config,
    merge_files,
    positive_int,
    print_table,
    save_json,
    scratch_dir,
    simulation_settings,
)

from thetaflow.core.samples import load_samples
from thetaflow.core.units import PB_PER_INVERSE_FB
from thetaflow.simulation.detector import reconstruct
from thetaflow.simulation.fastsim import (
    FastSimSettings,
    FastSimValidation,
    JetFastSim,
    conditions,
    fastsim_jets,
    jet_table,
    jet_training_set,
    sample_response,
    simulate_fastsim_chunk,
    simulate_training_events,
    train_jet_fastsim,
    validate,
)
from thetaflow.simulation.production import generate_filtered, model_settings, simulate_mc_chunk

SAMPLE = "zjets"
PT_BINS_GEV = (15.0, 25.0, 40.0, 60.0, 100.0, 200.0, 1000.0)
JET_VARIABLES = ("pt", "eta", "phi", "mass", "btagDeepFlavB")


def _validation_rows(result: FastSimValidation, names: list[str]) -> list[list]:
    return [[n, result.distances[n].wasserstein, result.distances[n].relative] for n in names]


def _response(table: Mapping[str, np.ndarray]) -> list[tuple[float, float, int]]:
    """Median and half 16-84 % width of reco/GenJet p_T per GenJet p_T bin (matched jets)."""
    out = []
    matched = table["gen_hadronFlavour"] >= 0
    for lo, hi in zip(PT_BINS_GEV[:-1], PT_BINS_GEV[1:], strict=True):
        sel = matched & (table["gen_pt"] >= lo) & (table["gen_pt"] < hi)
        r = table["pt"][sel] / table["gen_pt"][sel]
        q16, q50, q84 = np.percentile(r, [16, 50, 84]) if r.size else (np.nan,) * 3
        out.append((float(q50), float(0.5 * (q84 - q16)), int(sel.sum())))
    return out


def jets(model: JetFastSim, events: dict, seed: int) -> dict:
    """Jet-level comparison on the same events' GenJets."""
    fast = fastsim_jets(model, events, np.random.default_rng(seed))
    full_table, fast_table = jet_table(events), jet_table(fast)
    result = validate(full_table, fast_table, seed, group="event")
    names = [n for n in full_table if n != "event"]
    print_table(
        f"Jets of {len(events['Jet']):,} Z+jets events: fast against full",
        ["variable", "W1", "W1 / σ(full)"],
        _validation_rows(result, names),
    )
    n_full, n_fast = len(full_table["pt"]), len(fast_table["pt"])
    response_full, response_fast = _response(full_table), _response(fast_table)
    print_table(
        "p_T response (reco / GenJet p_T) of matched jets",
        ["GenJet p_T [GeV]", "median full", "median fast", "width full", "width fast", "jets"],
        [
            [f"{lo:g}-{hi:g}", f[0], s[0], f[1], s[1], f[2]]
            for lo, hi, f, s in zip(
                PT_BINS_GEV[:-1], PT_BINS_GEV[1:], response_full, response_fast, strict=True
            )
        ],
    )
    c2st = result.c2st
    print(
        f"\njets: {n_full:,} full, {n_fast:,} fast ({n_fast / n_full - 1:+.2%}); C2ST on "
        f"{', '.join(names)}: AUC {c2st.auc:.4f} (null σ {c2st.null_std:.4f}; "
        f"{c2st.n_train:,} train, {c2st.n_test:,} test jets)"
    )
    return {
        "n_jets_full": n_full,
        "n_jets_fast": n_fast,
        "c2st": asdict(c2st),
        "distances": {k: asdict(v) for k, v in result.distances.items()},
        "response_bins_gev": list(PT_BINS_GEV),
        "response_full": response_full,
        "response_fast": response_fast,
    }


def selected_events(config: dict, model: JetFastSim, n_events: int, workdir: Path) -> dict:
    """One chunk full and fast, through ingestion and features; compare the selected events."""
    sample = load_samples(config)[SAMPLE]
    settings = replace(simulation_settings(config), events_per_chunk=n_events)
    sample = replace(
        sample, spec={**sample.spec, "generate": {**sample.spec["generate"], "n_events": n_events}}
    )
    tables, cutflows = {}, {}
    for kind in ("full", "fast"):
        path = str(workdir / f"{kind}.root")
        start = time.perf_counter()
        if kind == "full":
            gen = sample.spec["generate"]
            simulate_mc_chunk(settings, model_settings(gen), SAMPLE, 0, n_events, path)
        else:
            simulate_fastsim_chunk(settings, sample, model, 0, path)
        simulated = time.perf_counter() - start
        ingested = ingest_files(config, [path], str(workdir / kind), SAMPLE)
        merge_files(config, ingested, str(workdir / kind), SAMPLE)
        tables[kind] = pq.read_table(workdir / kind / "nominal.parquet").to_pandas()
        cutflow = json.loads((workdir / kind / "cutflow.json").read_text())["cutflow"]["nominal"]
        cutflows[kind] = {row["cut"]: int(row["events"]) for row in cutflow}
        print(f"{kind}: chunk of {n_events:,} events simulated in {simulated:.1f} s")
    print_table(
        "Cutflow (events; 'all': written after the skim)",
        ["cut", "full", "fast", "fast / full"],
        [[c, n, cutflows["fast"][c], cutflows["fast"][c] / n] for c, n in cutflows["full"].items()],
    )
    features = list(config["features"])
    full, fast = tables["full"], tables["fast"]
    columns = {
        kind: {
            **{f: t[f].to_numpy(float) for f in features},
            "event": t["event"].to_numpy(float),
        }
        for kind, t in tables.items()
    }
    result = validate(columns["full"], columns["fast"], seed=7, group="event")
    print_table(
        f"Selected Z+jets events ({len(full):,} full, {len(fast):,} fast): the features",
        ["feature", "W1", "W1 / σ(full)"],
        _validation_rows(result, features),
    )
    lumi = config["analysis"]["lumi_fb"] * PB_PER_INVERSE_FB
    sumw = {kind: float(t["weight"].sum()) for kind, t in tables.items()}
    c2st = result.c2st
    print(
        f"\nselected events: {len(full):,} full, {len(fast):,} fast; Σw {sumw['full']:.1f} "
        f"full, {sumw['fast']:.1f} fast ({sumw['fast'] / sumw['full'] - 1:+.2%}) at "
        f"{lumi / PB_PER_INVERSE_FB:g} fb⁻¹; C2ST on the {len(features)} features: AUC "
        f"{c2st.auc:.4f} (null σ {c2st.null_std:.4f}; {c2st.n_test:,} test events)"
    )
    regions = {
        kind: {str(k): int(v) for k, v in t["region"].value_counts().items()}
        for kind, t in tables.items()
    }
    print(f"events per region: full {regions['full']}, fast {regions['fast']}")
    return {
        "events_simulated": n_events,
        "selected_full": len(full),
        "selected_fast": len(fast),
        "sumw_full": sumw["full"],
        "sumw_fast": sumw["fast"],
        "regions": regions,
        "cutflow": cutflows,
        "c2st": asdict(c2st),
        "distances": {k: asdict(v) for k, v in result.distances.items()},
    }


def speed(config: dict, model: JetFastSim, n_events: int, repeats: int) -> dict:
    """Detector against fast jets on the same truth, best of ``repeats``."""
    sample = load_samples(config)[SAMPLE]
    settings = simulation_settings(config)
    rng = np.random.default_rng(99)
    truth = generate_filtered(
        rng, model_settings(sample.spec["generate"]), settings.filter, n_accepted=n_events
    ).truth
    detector_s, fast_s, flow_s = [], [], []
    for k in range(repeats):
        start = time.perf_counter()
        reco = reconstruct(np.random.default_rng(k), truth, settings.detector)
        detector_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        fast = fastsim_jets(model, reco, np.random.default_rng(k))
        fast_s.append(time.perf_counter() - start)
        gen = {
            f: ak.to_numpy(ak.flatten(reco["GenJet"][f])).astype(float)
            for f in reco["GenJet"].fields
        }
        start = time.perf_counter()
        sample_response(model, gen, np.random.default_rng(k))
        flow_s.append(time.perf_counter() - start)
    n_full = int(ak.sum(ak.num(reco["Jet"])))
    n_fast = int(ak.sum(ak.num(fast["Jet"])))
    n_gen = len(conditions(gen["pt"], gen["eta"], gen["hadronFlavour"]))
    steps = (
        ("detector (reconstruct: leptons, jets, MET)", min(detector_s), n_full),
        ("fast jets (fastsim_jets: efficiency, flow, tables, MET)", min(fast_s), n_fast),
        ("flow alone (one draw per GenJet)", min(flow_s), n_gen),
    )
    rows = [[name, s, n_events / s, n / s] for name, s, n in steps]
    print_table(
        f"Speed on {n_events:,} Z+jets events (best of {repeats})",
        ["step", "seconds", "events/s", "jets/s"],
        rows,
    )
    return {
        "events": n_events,
        "detector_s": min(detector_s),
        "fastsim_s": min(fast_s),
        "flow_s": min(flow_s),
        "jets_full": n_full,
        "jets_fast": n_fast,
        "genjets": n_gen,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--training-events", type=positive_int, help="default: fastsim.training_events"
    )
    parser.add_argument("--epochs", type=positive_int, help="default: fastsim.epochs")
    parser.add_argument(
        "--validation-events", type=positive_int, default=100_000, help="jet-level comparison"
    )
    parser.add_argument(
        "--event-level-events", type=positive_int, default=200_000, help="the written chunk"
    )
    parser.add_argument(
        "--speed-events", type=positive_int, default=100_000, help="events timed per repeat"
    )
    parser.add_argument("--repeats", type=positive_int, default=2, help="best of this many")
    parser.add_argument("--scratch", default=None, help="parent of the scratch directory")
    parser.add_argument("--keep", action="store_true", help="keep the scratch files")
    add_json_argument(parser, "fastsim_validation")
    args = parser.parse_args()

    overrides = {"sample": SAMPLE}
    if args.training_events:
        overrides["training_events"] = args.training_events
    if args.epochs:
        overrides["epochs"] = args.epochs
    config = load_config({"fastsim": overrides})
    settings = FastSimSettings.from_config(config["fastsim"])
    sample = load_samples(config)[SAMPLE]
    simulation = simulation_settings(config)
    print(f"fastsim settings: {settings}")

    start = time.perf_counter()
    events = simulate_training_events(simulation, sample, settings.training_events, settings.seed)
    data = jet_training_set(events, SAMPLE)
    simulated = time.perf_counter() - start
    training = train_jet_fastsim(data, settings)
    print(
        f"\ntraining set: {settings.training_events:,} events ({simulated:.1f} s), "
        f"{training.n_genjets:,} GenJets, {training.n_matched:,} matched and "
        f"{training.n_unmatched:,} unmatched jets; trained in {training.seconds:.0f} s: flow "
        f"{training.flow.epochs} epochs (best {training.flow.best_epoch}, validation NLL "
        f"{training.flow.best_valid_loss:.4f}), efficiency {training.efficiency.epochs} epochs "
        f"(best {training.efficiency.best_epoch}, BCE {training.efficiency.best_valid_loss:.4f})"
    )

    validation_events = simulate_training_events(
        simulation, sample, args.validation_events, settings.seed + 1
    )
    figures = {
        "environment": environment(),
        "settings": asdict(settings),
        "training": {
            "seconds": training.seconds,
            "genjets": training.n_genjets,
            "matched": training.n_matched,
            "unmatched": training.n_unmatched,
            "flow": asdict(training.flow),
            "efficiency": asdict(training.efficiency),
        },
        "jets": jets(training.model, validation_events, seed=settings.seed + 2),
    }
    with scratch_dir("fastsim_", args.scratch, args.keep) as workdir:
        figures["selected_events"] = selected_events(
            config, training.model, args.event_level_events, workdir
        )
    figures["speed"] = speed(config, training.model, args.speed_events, args.repeats)
    save_json(args.json, figures)


if __name__ == "__main__":
    main()
