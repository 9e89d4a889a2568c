#!/usr/bin/env bash
# Set up thetaflow's virtual environment (idempotent) and run one of its two entry points.
#
#   bash workflow/bootstrap.sh analysis [snakemake args...]   default analysis + HTML report
#   bash workflow/bootstrap.sh test [pytest args...]          the test suite
#   bash workflow/bootstrap.sh setup                          only install
#
# Everything the project needs is installed here, from PyPI, into .venv; nothing by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
python=${THETAFLOW_PYTHON:-python3.11}
stamp="$venv/.thetaflow-installed"

setup() {
    if ! command -v "$python" >/dev/null 2>&1; then
        echo "bootstrap: $python not found; thetaflow needs Python 3.11 (set THETAFLOW_PYTHON)" >&2
        exit 1
    fi
    if [ ! -x "$venv/bin/python" ]; then
        echo "bootstrap: creating $venv with $python"
        "$python" -m venv "$venv"
    fi
    # Reinstall only when the pins changed: the stamp holds a hash of pyproject + constraints.
    want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        echo "bootstrap: installing thetaflow and its pinned dependencies into $venv"
        "$venv/bin/python" -m pip install --quiet --upgrade pip
        "$venv/bin/python" -m pip install --quiet -c constraints.txt -e ".[dev]"
        echo "$want" >"$stamp"
    fi
    # Debian packages of the FPGA benchmark (g++, GHDL, Yosys, nlohmann-json) and of the
    # report's browser test (chromium, chromium-driver): installed if missing and root, else named; THETAFLOW_SKIP_SYSTEM_PACKAGES=1 skips the check
    bash workflow/install_system_packages.sh
    export PATH="$PWD/$venv/bin:$PATH"
    export MPLBACKEND=Agg TF_CPP_MIN_LOG_LEVEL=2
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
setup)
    setup
    ;;
analysis)
    setup
    # a batch profile (--profile profiles/slurm|htcondor): its executor plugin must be
    # installed, and the local profiles/default must not be merged over it
    python -m thetaflow.operations.batch check-args "$@"
    profile=(--profile profiles/default)
    for arg in "$@"; do
        case "$arg" in --profile | --profile=*) profile=(--workflow-profile none) ;; esac
    done
    snakemake "${profile[@]}" "$@"
    snakemake "${profile[@]}" --report results/report.html "$@"
    echo "bootstrap: results under results/, report at results/report.html"
    ;;
test)
    setup
    # code habits: lint, format, types, the stage layering (import-linter), then the workflow
    ruff check src scripts tests benchmarks
    ruff format --check src scripts tests benchmarks
    mypy
    lint-imports
    snakemake --lint
    snakefmt --check .
    snakemake -n --cores 2 --quiet
    snakemake -n --cores 2 --quiet --configfile config/ci.yaml
    if [ $# -gt 0 ]; then
        python -m pytest "$@"
    else
        # the unit tests spread over every core (a module's tests stay on one worker, which
        # builds its fixtures once), then the workflow tests: they share one toy run whose
        # jobs use every core themselves
        python -m pytest tests/unit -n auto --dist loadfile
        python -m pytest tests/workflow
    fi
    ;;
*)
    echo "usage: bash workflow/bootstrap.sh {analysis|test|setup} [args...]" >&2
    exit 2
    ;;
esac
