#!/usr/bin/env bash
# Install the Debian packages that the FPGA benchmark (rule benchmark_fpga) and the tests need,
# if missing:
#   g++                 hls4ml and conifer bit-accurate emulation (C++ built at run time)
#   ghdl                VHDL simulation: cycle counts of the generated designs
#   yosys               synth_xilinx resource cross-check of the generated Verilog
#   nlohmann-json3-dev  JSON headers of conifer's C++ backend
#   chromium            headless browser that opens the HTML report
#                       (tests/workflow/test_report_browser.py)
#   chromium-driver     its WebDriver (chromedriver), through which Selenium drives it
#   xrootd-server       a real XRootD server on localhost serving the NanoAOD test files over
#                       root:// (tests/workflow/test_xrootd.py)
# Idempotent: does nothing when every tool is there. Skipped with THETAFLOW_SKIP_SYSTEM_PACKAGES=1.
# Without root or apt-get it only names what is missing (the rule then says so too).
set -euo pipefail

if [ "${THETAFLOW_SKIP_SYSTEM_PACKAGES:-0}" = 1 ]; then
    echo "system packages: skipped (THETAFLOW_SKIP_SYSTEM_PACKAGES=1)"
    exit 0
fi

missing=()
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v ghdl >/dev/null 2>&1 || missing+=(ghdl)
command -v yosys >/dev/null 2>&1 || missing+=(yosys)
[ -f /usr/include/nlohmann/json.hpp ] || missing+=(nlohmann-json3-dev)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v xrootd >/dev/null 2>&1 || missing+=(xrootd-server)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "system packages: missing ${missing[*]}; install them (Debian: sudo apt-get install ${missing[*]})," \
        "or the FPGA benchmark tiers that need them report them as missing" \
        "and the report's browser test fails (the XRootD test skips)" >&2
    exit 0
fi
echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
