"""Tables and figures of the benchmarks (the report's "Benchmarks" category)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from thetaflow.core.io import atomic_path, read_json  # noqa: E402
from thetaflow.plotting.style import save_figure  # noqa: E402

log = logging.getLogger(__name__)


def write_csv(frame: pd.DataFrame, path: str) -> None:
    """Write ``frame`` as CSV atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def gpu_figure(result: Mapping, output: str) -> None:
    """Median latency and throughput against batch size, per model and device."""
    fig, (ax_lat, ax_thr) = plt.subplots(1, 2, figsize=(11, 4.2))
    frame = pd.DataFrame(result["inference"])
    if not frame.empty:
        for (model, device), group in frame.groupby(["model", "device"]):
            style = "-" if device == "cpu" else "--"
            ax_lat.plot(
                group["batch"], 1e3 * group["p50_s"], style, marker="o", label=f"{model} ({device})"
            )
            ax_thr.plot(
                group["batch"],
                group["events_per_s"],
                style,
                marker="o",
                label=f"{model} ({device})",
            )
    for ax, label in ((ax_lat, "median latency per call [ms]"), (ax_thr, "throughput [events/s]")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("batch size [events]")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    ax_thr.legend(fontsize=8)
    speedup = pd.DataFrame(result.get("speedup", []))
    if not speedup.empty:  # GPU/CPU speed-up of the median latency, written on the latency panel
        lines = [
            f"{r.model} {r.device} batch {r.batch}: ×{r.speedup:.2g}" for r in speedup.itertuples()
        ]
        ax_lat.text(
            0.02,
            0.98,
            "GPU/CPU speed-up\n" + "\n".join(lines),
            transform=ax_lat.transAxes,
            va="top",
            fontsize=6,
            family="monospace",
        )
    title = "CPU and GPU" if result["gpu_present"] else "CPU only — no GPU present"
    fig.suptitle(f"Inference timing: {title} ({result['cpu_threads']} CPU thread(s))")
    save_figure(fig, output)


def fpga_rows(results: Sequence[Mapping]) -> pd.DataFrame:
    """One row per model: the three tiers at the default precision."""
    rows = []
    for r in results:
        row = {"model": r["model"], "family": r.get("family"), "status": r.get("status", "ok")}
        if row["status"] != "ok":
            row["note"] = r.get("note", "")
            rows.append(row)
            continue
        fid = r["fidelity"]
        d = fid.get("default", fid)
        row.update(
            {
                "precision": d.get("precision", r.get("precision")),
                "agreement": d.get("agreement", fid.get("argmax_agreement")),
                "auc_float": d.get("auc_float"),
                "auc_fixed": d.get("auc_fixed"),
                "sig_eff_float": d.get("signal_efficiency_float"),
                "sig_eff_fixed": d.get("signal_efficiency_fixed"),
            }
        )
        lat = r.get("latency", {})
        row.update(
            {
                "cycles": lat.get("cycles"),
                "latency_ns": lat.get("ns"),
                "clock_mhz": r.get("clock_mhz"),
                "latency_method": lat.get("method", lat.get("note", "")),
                "formula_cycles": lat.get("formula_2_depth_log2trees"),
                "da4ml_stages": lat.get("da4ml_stages"),
            }
        )
        res = r.get("resources", {})
        est = res.get("da4ml") or res.get("conifer") or {}
        yosys = res.get("yosys", {})
        row.update(
            {
                "lut_estimate": est.get("lut"),
                "ff_estimate": est.get("ff"),
                "estimate_source": "da4ml"
                if "da4ml" in res
                else ("conifer" if "conifer" in res else None),
                "yosys_lut": yosys.get("lut"),
                "yosys_ff": yosys.get("ff"),
                "yosys_note": yosys.get("note", "") if not yosys.get("available") else "",
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def summarise_fpga(
    model_jsons: Sequence[str], reference_json: str | None, outputs: Mapping[str, str]
) -> pd.DataFrame:
    """Workflow entry point: the FPGA tiers table (CSV) and the precision-scan figure."""
    results = [read_json(p) for p in model_jsons]
    if reference_json:
        results.append(read_json(reference_json) | {"status": "ok", "family": "reference"})
    table = fpga_rows(results)
    write_csv(table, outputs["table"])
    fig, (ax_agree, ax_auc) = plt.subplots(1, 2, figsize=(11, 4.2))
    for r in results:
        scan = r.get("fidelity", {}).get("scan")
        if r.get("status") != "ok" or not scan:
            continue
        scan = pd.DataFrame(scan)
        ax_agree.plot(scan["width"], scan["agreement"], marker="o", label=r["model"])
        ax_auc.plot(
            scan["width"], scan["auc_fixed"] - scan["auc_float"], marker="o", label=r["model"]
        )
    ax_agree.set_ylabel("agreement with the float model")
    ax_auc.set_ylabel("AUC(fixed) − AUC(float)")
    for ax in (ax_agree, ax_auc):
        ax.set_xlabel("total bits W of ap_fixed<W,I>")
        ax.grid(alpha=0.3)
    ax_agree.legend(fontsize=8)
    fig.suptitle("Bit-accurate fixed-point emulation (hls4ml / conifer) on the test fold")
    save_figure(fig, outputs["figure"])
    return table
