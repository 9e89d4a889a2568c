"""Throughput of the embedded simulation per sample, optionally side by side with another
checkout, and the physics of the two sets of files compared.

For every generated sample of the default config (or ``--samples``) it runs chunk 0 (or
``--chunks`` chunks) exactly as the ``simulate`` rule does (``simulate_sample_chunk``), each
in a fresh Python process, and prints per sample: written events, generated events, the CPU
time (user + system) of the library call and of the whole process (interpreter start and
imports included; this worker imports the whole analysis, more than the rule's script),
written events per CPU second of the call, and the call CPU of the whole sample (per-chunk
CPU × its chunk jobs).

``--baseline ROOT`` runs the same chunks with the code of another tree first (a checkout or
``git archive <commit> src config | tar -x -C ROOT``: ROOT/src and ROOT/config are used),
alternating baseline and current per chunk so that load drifts hit both, and prints the
ratios. CPU time, not wall, is the figure to compare on a shared machine. It then compares
the two sets of files (``--no-physics`` skips it): per MC sample the filter efficiency, the
expected yield σ·L·Σw(written)/Σw(generated) with their statistical errors, and two-sample
Kolmogorov-Smirnov p-values of leading-lepton p_T, m_ll, jet multiplicity, m_bb, MET and
p_T(ll); per pseudo-data sample the written counts (Poisson) and the same KS tests. The
random streams differ between the two codes, so the files are independent samples of what
should be the same distributions: the p-values are then uniform on [0, 1].

Never asserts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CURRENT_ROOT = HERE.parent
DEFAULT_SAMPLES = ("zh", "zz", "zjets", "ttbar", "bsm", "data", "data_bsm")


# --------------------------------------------------------------------------- the worker


def _worker(root: Path, sample: str, chunk: int, output: Path) -> None:
    """In a fresh process: simulate one chunk with the code under ``root``; print JSON."""
    import resource

    sys.path.insert(0, str(root / "src"))
    os.chdir(root)  # the config names config/samples.yaml relative to the working directory
    from thetaflow.analysis import load_analysis
    from thetaflow.simulation.production import simulate_sample_chunk

    config, _ = load_analysis([root / "config" / "config.yaml"], None)

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    cpu0, t0 = cpu(), time.perf_counter()
    counts = simulate_sample_chunk(config, sample, chunk, str(output))
    wall, call_cpu = time.perf_counter() - t0, cpu() - cpu0
    print(json.dumps({"counts": counts, "call_cpu_s": call_cpu, "call_wall_s": wall}, default=int))


def run_chunk(root: Path, sample: str, chunk: int, output: Path) -> dict:
    """Run :func:`_worker` in a child process; add the child's own total CPU (rusage)."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        str(root),
        sample,
        str(chunk),
        str(output),
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": ""})
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{sample} chunk {chunk} with {root} failed ({proc.returncode})")
    record = json.loads(out.decode().strip().splitlines()[-1])
    record["process_cpu_s"] = usage.ru_utime + usage.ru_stime
    record["process_wall_s"] = time.perf_counter() - t0
    return record


# --------------------------------------------------------------------------- physics


def _arrays(path: Path) -> dict:
    """Per-event quantities of a written chunk, computed from the NanoAOD branches."""
    import awkward as ak
    import uproot

    with uproot.open(path) as f:
        ev = f["Events"].arrays(
            [
                "Muon_pt",
                "Muon_eta",
                "Muon_phi",
                "Muon_mass",
                "Electron_pt",
                "Electron_eta",
                "Electron_phi",
                "Electron_mass",
                "Jet_pt",
                "Jet_eta",
                "Jet_phi",
                "Jet_mass",
                "Jet_btagDeepFlavB",
                "MET_pt",
            ]
        )
        weight = (
            f["Events"]["genWeight"].array(library="np").astype(float)
            if "genWeight" in f["Events"]
            else np.ones(len(ev))
        )
        runs = None
        if "Runs" in f:
            r = f["Runs"].arrays(library="np")
            runs = {k: float(v.sum()) for k, v in r.items()}

    def four(prefix: str) -> ak.Array:
        return ak.zip(
            {k: ev[f"{prefix}_{k}"] for k in ("pt", "eta", "phi", "mass")},
            with_name="Momentum4D",
        )

    import vector

    vector.register_awkward()
    leptons = ak.concatenate([four("Muon"), four("Electron")], axis=1)
    leptons = leptons[ak.argsort(leptons.pt, axis=1, ascending=False)]
    two = ak.num(leptons) >= 2
    pair = leptons[two][:, 0] + leptons[two][:, 1]
    jets = four("Jet")
    jets = ak.with_field(jets, ev["Jet_btagDeepFlavB"], "btag")
    jets = jets[(jets.pt > 20) & (abs(jets.eta) < 2.5)]
    two_jets = ak.num(jets) >= 2
    by_tag = jets[two_jets][ak.argsort(jets[two_jets].btag, axis=1, ascending=False)]
    bb = by_tag[:, 0] + by_tag[:, 1]
    return {
        "n": len(ev),
        "weight": weight,
        "runs": runs,
        "lead lepton pT": ak.to_numpy(leptons[ak.num(leptons) >= 1][:, 0].pt),
        "m_ll": ak.to_numpy(pair.mass),
        "pT_ll": ak.to_numpy(pair.pt),
        "n_jets": ak.to_numpy(ak.num(jets)),
        "m_bb": ak.to_numpy(bb.mass),
        "MET": ak.to_numpy(ev["MET_pt"]),
    }


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    from scipy import stats

    if a.size == 0 or b.size == 0:
        return math.nan
    return float(stats.ks_2samp(a, b).pvalue)


def _yield(d: dict, xsec_pb: float, lumi_fb: float) -> tuple[float, float]:
    """σ·L·Σw(written)/Σw(generated) and its statistical error.

    Each generated event i contributes w_i·[written]; the error of the efficiency ratio is
    sqrt(Σ_written w²·(1-ε)² + Σ_not w²·ε²)/Σw, with Σ_not w² = Σw²(generated) - Σ_written w².
    """
    sumw_gen, sumw2_gen = d["runs"]["genEventSumw"], d["runs"]["genEventSumw2"]
    w = d["weight"]
    eff = w.sum() / sumw_gen
    w2_written = float((w**2).sum())
    var = w2_written * (1 - eff) ** 2 + (sumw2_gen - w2_written) * eff**2
    scale = xsec_pb * 1000.0 * lumi_fb
    return scale * eff, scale * math.sqrt(max(var, 0.0)) / sumw_gen


def compare_physics(
    base_dir: Path, new_dir: Path, measured: dict[str, int], xsec: dict, lumi_fb: float
) -> list[list]:
    """Rows of the physics comparison (base vs current) of every sample's measured chunks."""
    rows: list[list] = []
    for sample, chunks in measured.items():
        base = [_arrays(base_dir / f"{sample}_{c}.root") for c in range(chunks)]
        new = [_arrays(new_dir / f"{sample}_{c}.root") for c in range(chunks)]

        def cat(parts: list[dict], key: str) -> np.ndarray:
            return np.concatenate([p[key] for p in parts])

        n_b, n_n = sum(p["n"] for p in base), sum(p["n"] for p in new)
        if base[0]["runs"] is not None:
            gen_b = sum(p["runs"]["genEventCount"] for p in base)
            gen_n = sum(p["runs"]["genEventCount"] for p in new)
            # filtered events per chunk = the chunk size (the written ones passed the skim too)
            filt_b, filt_n = _filtered(base_dir, sample, chunks), _filtered(new_dir, sample, chunks)
            eff_b, eff_n = filt_b / gen_b, filt_n / gen_n
            se = math.sqrt(eff_b * (1 - eff_b) / gen_b + eff_n * (1 - eff_n) / gen_n)
            rows.append([sample, "filter efficiency", eff_b, eff_n, (eff_n - eff_b) / se, None])
            y_b = [_yield(p, xsec[sample], lumi_fb) for p in base]
            y_n = [_yield(p, xsec[sample], lumi_fb) for p in new]
            yb = sum(y for y, _ in y_b) / chunks
            yn = sum(y for y, _ in y_n) / chunks
            eb = math.sqrt(sum(e**2 for _, e in y_b)) / chunks
            en = math.sqrt(sum(e**2 for _, e in y_n)) / chunks
            rows.append(
                [sample, "σ·L·Σw_written/Σw_gen", yb, yn, (yn - yb) / math.hypot(eb, en), None]
            )
            skim_b, skim_n = n_b / filt_b, n_n / filt_n
            se = math.sqrt(skim_b * (1 - skim_b) / filt_b + skim_n * (1 - skim_n) / filt_n)
            rows.append([sample, "skim efficiency", skim_b, skim_n, (skim_n - skim_b) / se, None])
        else:
            rows.append(
                [sample, "written events", n_b, n_n, (n_n - n_b) / math.sqrt(n_b + n_n), None]
            )
        for key in ("lead lepton pT", "m_ll", "pT_ll", "n_jets", "m_bb", "MET"):
            a, b = cat(base, key), cat(new, key)
            rows.append([sample, f"mean {key}", float(a.mean()), float(b.mean()), None, _ks(a, b)])
    return rows


def _filtered(directory: Path, sample: str, chunks: int) -> int:
    with open(directory / f"{sample}.counts.json") as f:
        counts = json.load(f)
    return int(sum(counts[str(c)]["filtered"] for c in range(chunks)))


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Time the chunks (both trees if --baseline), print the tables, compare the physics."""
    from _common import environment, load_config, print_table, save_json

    from thetaflow.core.samples import load_samples
    from thetaflow.simulation.production import sample_chunks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="root of the tree to compare with")
    parser.add_argument("--samples", nargs="+", default=list(DEFAULT_SAMPLES))
    parser.add_argument(
        "--chunks", type=int, default=1, help="chunks per sample, from 0 (at most its jobs)"
    )
    parser.add_argument("--keep", type=Path, help="keep the written files in this directory")
    parser.add_argument("--no-physics", action="store_true", help="skip the physics comparison")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)

    config = load_config()
    samples = load_samples(config)
    per_chunk = config["simulation"]["events_per_chunk"]
    trees = {"current": CURRENT_ROOT}
    if args.baseline is not None:
        trees = {"baseline": args.baseline.resolve(), **trees}
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="simulation_throughput_"))
    records: dict[str, dict[str, list[dict]]] = {t: {s: [] for s in args.samples} for t in trees}
    jobs = {s: sample_chunks(samples[s].spec["generate"], per_chunk) for s in args.samples}
    measured = {s: min(args.chunks, jobs[s]) for s in args.samples}
    for sample in args.samples:
        for chunk in range(measured[sample]):
            for tree, root in trees.items():
                out = workdir / tree
                out.mkdir(parents=True, exist_ok=True)
                rec = run_chunk(root, sample, chunk, out / f"{sample}_{chunk}.root")
                records[tree][sample].append(rec)
                print(
                    f"{tree:8s} {sample:9s} chunk {chunk}: {rec['call_cpu_s']:.2f} s CPU "
                    f"(process {rec['process_cpu_s']:.2f} s), {rec['counts']}",
                    flush=True,
                )
        for tree in trees:
            counts = {str(c): r["counts"] for c, r in enumerate(records[tree][sample])}
            (workdir / tree / f"{sample}.counts.json").write_text(json.dumps(counts))

    rows = []
    summary: dict[str, dict] = {}
    for sample in args.samples:
        row: list = [sample, jobs[sample]]
        for tree in trees:
            recs = records[tree][sample]
            written = sum(_written(r["counts"]) for r in recs)
            call = sum(r["call_cpu_s"] for r in recs)
            proc = sum(r["process_cpu_s"] for r in recs)
            row += [written / len(recs), call / len(recs), proc / len(recs), written / call]
            row.append(call / len(recs) * jobs[sample])
            summary.setdefault(sample, {})[tree] = {
                "chunks_measured": len(recs),
                "chunk_jobs": jobs[sample],
                "written_per_chunk": written / len(recs),
                "call_cpu_s_per_chunk": call / len(recs),
                "process_cpu_s_per_chunk": proc / len(recs),
                "written_per_cpu_s": written / call,
                "sample_call_cpu_s": call / len(recs) * jobs[sample],
            }
        if len(trees) == 2:
            b, c = summary[sample]["baseline"], summary[sample]["current"]
            row.append(c["call_cpu_s_per_chunk"] / b["call_cpu_s_per_chunk"])
        rows.append(row)
    headers = ["sample", "jobs"]
    for tree in trees:
        headers += [
            f"{tree} written/chunk",
            "call CPU s",
            "process CPU s",
            "written/CPU s",
            "sample call CPU s",
        ]
    if len(trees) == 2:
        headers.append("call CPU ratio")
    print_table(
        "simulation per chunk job (chunks measured: "
        + ", ".join(f"{s} {m}" for s, m in measured.items())
        + "); CPU = user + system",
        headers,
        rows,
    )
    for tree in trees:
        call = sum(summary[s][tree]["sample_call_cpu_s"] for s in args.samples)
        written = sum(
            summary[s][tree]["written_per_chunk"] * summary[s][tree]["chunk_jobs"]
            for s in args.samples
        )
        print(
            f"{tree}: every chunk job of these samples ≈ {call:,.0f} CPU s in the library call, "
            f"{written / call:,.0f} written events per CPU second"
        )
    figures: dict = {"environment": environment(), "samples": summary}
    if len(trees) == 2 and not args.no_physics:
        xsec = {s: samples[s].spec.get("xsec_pb", math.nan) for s in args.samples}
        physics = compare_physics(
            workdir / "baseline",
            workdir / "current",
            measured,
            xsec,
            config["analysis"]["lumi_fb"],
        )
        print_table(
            "physics: baseline vs current (pull = difference / combined statistical error; "
            "KS = two-sample Kolmogorov-Smirnov p-value)",
            ["sample", "quantity", "baseline", "current", "pull", "KS p"],
            physics,
        )
        figures["physics"] = physics
    if args.keep is None:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    if args.json is not None:
        save_json(args.json, figures)
    return 0


def _written(counts: dict) -> int:
    """Events written by a chunk: MC reports them, pseudo-data per process."""
    if "written" in counts:
        return int(counts["written"])
    return int(sum(c["written"] for c in counts.values()))


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        _worker(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), Path(sys.argv[5]))
        sys.exit(0)
    sys.exit(main())
