#!/usr/bin/env bash
# GPU benchmark (rule benchmark_gpu) of a finished default run's models, in a few minutes.
#
# Usage (from anywhere; relative paths are relative to the current directory):
#   bash benchmarks/device_check.sh [--results DIR] [--configfile FILE]... [--out FILE]
#                                   [--threads N] [--cpu-only] [--pack DIR]
#
#   --results DIR      results folder of a finished run (default: <repo>/results)
#   --configfile FILE  config merged over config/config.yaml, as snakemake --configfile
#                      (e.g. config/ci.yaml for a toy run; default: none, the default config)
#   --out FILE         Markdown table (default: <results>/benchmarks/gpu/device_check.md);
#                      benchmark.json, inference.csv and inference.png go to FILE without .md
#   --threads N        CPU threads of the CPU reference, as the rule's (default: 2)
#   --cpu-only         hide every GPU and run the same code on the CPU: a check of the
#                      plumbing, labelled CPU only (default out: .../device_check_cpu.md)
#   --pack DIR         copy only what the benchmark reads from --results (the benchmarked
#                      fold's models, the used columns and rows of the training table: a few
#                      MiB) into the results folder DIR for another machine, and stop
#
# It asks nvidia-smi, TensorFlow and xgboost whether a GPU is there. Without one it prints
# "no GPU present", runs nothing, writes nothing and exits 0. With one TensorFlow can use, it
# runs thetaflow.benchmarking.gpu.run_gpu_benchmark (the library call of rule benchmark_gpu)
# on <results>/ml/training.parquet and <results>/models/{nn,bdt,autoencoder}/fold0, nothing
# else of the chain, then writes and prints the Markdown table and its wall time (goal: under
# 5 minutes; on the CPU alone the default run's benchmark_gpu job takes about 20 s). Exit
# status: 0 done, or no GPU; 1 a diagnosed error (config, unreadable input, missing package);
# 2 inputs missing; 3 nvidia-smi sees a GPU that TensorFlow cannot use.
#
# Python: <repo>/.venv/bin/python if present, else python3 (the package is imported from
# <repo>/src, so it need not be installed; its dependencies must be).
#
# Examples:
#   bash benchmarks/device_check.sh                     # default run in results/
#   # a GPU machine that gets only the checkout and a few MiB: pack the default run's inputs
#   # into the (git-ignored) results/ of a checkout without a run, carry results/, and there:
#   bash benchmarks/device_check.sh --results /path/to/run/results --pack results
#   bash benchmarks/device_check.sh --out "$OUT/device_check.md"
#   bash benchmarks/device_check.sh --results toy/results --configfile config/ci.yaml --cpu-only
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -x "$ROOT/.venv/bin/python" ]]; then
    PYTHON="$ROOT/.venv/bin/python"
elif command -v python3 >/dev/null 2>&1; then
    PYTHON="$(command -v python3)"
else
    echo "device_check: neither $ROOT/.venv/bin/python nor python3 found" >&2
    exit 1
fi

export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-1}"  # TensorFlow: warnings, not info
export MPLBACKEND="${MPLBACKEND:-Agg}"

echo "device_check: $PYTHON ($("$PYTHON" -c 'import platform; print(platform.python_version())'))"
# the defaults first, so that the caller's --results/--base-config override them
exec "$PYTHON" -m thetaflow.benchmarking.device_check \
    --base-config "$ROOT/config/config.yaml" --results "$ROOT/results" "$@"
