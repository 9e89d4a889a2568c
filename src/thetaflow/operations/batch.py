"""Batch-system checks: is a profile's executor plugin installed, is SLURM reachable.

Snakemake's own answer to a profile naming an executor whose plugin is missing is an
argparse error (``invalid choice: 'slurm'``) that does not say what to install, so the
README entry point (``bash workflow/bootstrap.sh analysis --profile ...``) runs
``python -m thetaflow.operations.batch check-profile DIR`` first. The workflow's ``onstart``
hook calls :func:`check_slurm` before the first ``sbatch`` so that an unreachable controller or
accounting daemon stops the run with one clear message within a bounded time.
:func:`put_on_job_pythonpath` lets every job import this checkout's thetaflow, whatever
environment it runs in.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from thetaflow.core import paths
from thetaflow.core.errors import ThetaflowError

# executors that ship with Snakemake itself
BUILTIN_EXECUTORS = {"local", "dryrun", "touch"}
PROFILE_FILES = ("config.v8+.yaml", "config.yaml")


class BatchError(ThetaflowError, RuntimeError):
    """A profile or batch system that cannot be used; the message says how to fix it."""


def put_on_job_pythonpath(directory: str) -> None:
    """Put ``directory`` first on the PYTHONPATH that jobs started from this process inherit
    (local jobs directly, SLURM jobs through ``sbatch --export=ALL``): a rule's conda env
    (``--use-conda``) holds thetaflow's dependencies, not thetaflow itself. Idempotent."""
    entries = [e for e in os.environ.get("PYTHONPATH", "").split(os.pathsep) if e]
    if directory not in entries:
        os.environ["PYTHONPATH"] = os.pathsep.join([directory, *entries])


def plugin_package(executor: str) -> str:
    """PyPI package of an executor plugin: ``slurm`` -> ``snakemake-executor-plugin-slurm``."""
    return f"snakemake-executor-plugin-{executor}"


def plugin_installed(executor: str) -> bool:
    """Whether Snakemake can load the executor (built in, or its plugin module importable)."""
    if executor in BUILTIN_EXECUTORS:
        return True
    module = "snakemake_executor_plugin_" + executor.replace("-", "_")
    return importlib.util.find_spec(module) is not None


def profile_file(profile: str | Path) -> Path:
    """The config file of a profile directory (Snakemake 8+ name first)."""
    directory = Path(profile)
    for name in PROFILE_FILES:
        if (directory / name).is_file():
            return directory / name
    raise BatchError(f"profile {directory}: no {' or '.join(PROFILE_FILES)} in it")


def profile_executor(profile: str | Path) -> str:
    """The executor a profile selects (``local`` when it names none)."""
    path = profile_file(profile)
    settings = yaml.safe_load(path.read_text()) or {}
    if not isinstance(settings, dict):
        raise BatchError(f"{path}: not a YAML mapping")
    return str(settings.get("executor", "local"))


def check_profile(profile: str | Path) -> str:
    """Raise BatchError naming the package to install when the profile's plugin is missing."""
    executor = profile_executor(profile)
    if not plugin_installed(executor):
        package = plugin_package(executor)
        raise BatchError(
            f"profile {profile} uses executor '{executor}', but its plugin is not installed: "
            f"install the package {package} (in this repository: "
            f".venv/bin/pip install -c constraints.txt {package})"
        )
    return executor


def profiles_in_args(args: list[str]) -> list[str]:
    """Profile directories named on a Snakemake command line (``--profile X``/``--profile=X``)."""
    found = []
    for i, arg in enumerate(args):
        if arg == "--profile" and i + 1 < len(args):
            found.append(args[i + 1])
        elif arg.startswith("--profile="):
            found.append(arg.split("=", 1)[1])
    return found


def check_slurm(timeout: float = 30.0, env: dict[str, str] | None = None) -> None:
    """Raise BatchError unless the SLURM controller and its accounting daemon answer.

    The SLURM executor submits with ``sbatch``, validates the account with ``sshare`` or
    ``sacctmgr`` and polls job states with ``sacct``; each would otherwise fail (or retry)
    with a low-level message. Each probe gets ``timeout`` seconds.
    """
    env = dict(os.environ if env is None else env)
    conf = env.get("SLURM_CONF", "/etc/slurm/slurm.conf")
    for cmd, what in (
        (["sinfo", "-h", "-o", "%P"], "the SLURM controller (slurmctld)"),
        (["sacctmgr", "-n", "list", "cluster"], "SLURM accounting (slurmdbd)"),
    ):
        if shutil.which(cmd[0], path=env.get("PATH")) is None:
            raise BatchError(
                f"SLURM is not reachable: `{cmd[0]}` is not installed on this host "
                "(run Snakemake on a login node of the cluster)"
            )
        try:
            run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as err:
            raise BatchError(
                f"SLURM is not reachable: {what} did not answer `{' '.join(cmd)}` "
                f"within {timeout:.0f} s (SLURM_CONF={conf})"
            ) from err
        if run.returncode != 0:
            detail = (run.stderr or run.stdout).strip().splitlines()
            raise BatchError(
                f"SLURM is not reachable: `{' '.join(cmd)}` failed for {what} "
                f"(SLURM_CONF={conf}): {detail[-1] if detail else run.returncode}"
            )


_RULE = re.compile(r"^(?:rule|checkpoint)\s+(\w+)\s*:", re.M)
_RESOURCE = re.compile(r"\b(mem_mb|runtime|gpu)\s*=\s*([^,\n]+)")
_THREADS = re.compile(r"^\s+threads:\s*([^\n#]+)", re.M)
# a rule's benchmark: a string, or paths.rule_benchmark("<name>") (thetaflow.core.paths)
_BENCHMARK = re.compile(
    r"^\s+benchmark:\s*\n\s+(?:f?\"([^\"]+)\"|paths\.rule_benchmark\(\"([^\"]+)\"\))", re.M
)


def rule_resources(rule_files: list[Path]) -> dict[str, dict[str, str]]:
    """``threads``, ``mem_mb``, ``runtime`` and ``gpu`` as written in each rule of .smk files.

    A plain text scan (no Snakemake): values are the expressions as written, e.g. ``"3000"``.
    """
    found: dict[str, dict[str, str]] = {}
    for path in rule_files:
        text = Path(path).read_text()
        heads = list(_RULE.finditer(text))
        for head, nxt in zip(heads, heads[1:] + [None], strict=False):
            body = text[head.end() : nxt.start() if nxt else len(text)]
            entry = {k: v.strip() for k, v in _RESOURCE.findall(body)}
            threads = _THREADS.search(body)
            if threads:
                entry["threads"] = threads.group(1).strip()
            benchmark = _BENCHMARK.search(body)
            if benchmark:
                literal, name = benchmark.groups()
                entry["benchmark"] = literal if literal is not None else paths.rule_benchmark(name)
            found[head.group(1)] = entry
    return found


def suggest_resources(
    max_rss_mb: float, max_wall_s: float, memory_margin: float = 1.5, runtime_margin: float = 3.0
) -> dict[str, int]:
    """Requests from a measured job: mem_mb = margin × peak RSS rounded up to 500 MB (at least
    500), runtime = margin × wall time rounded up to 5 minutes (at least 5)."""
    mem = max(500, math.ceil(memory_margin * max_rss_mb / 500.0) * 500)
    runtime = max(5, math.ceil(runtime_margin * max_wall_s / 60.0 / 5.0) * 5)
    return {"mem_mb": int(mem), "runtime": int(runtime)}


def htcondor_set_resources(resources: dict[str, dict[str, str]]) -> dict[str, dict[str, int]]:
    """HTCondor submit requests per rule: request_memory = mem_mb, request_gpus = gpu."""
    out: dict[str, dict[str, int]] = {}
    for rule, res in sorted(resources.items()):
        entry = {}
        if res.get("mem_mb", "").isdigit():
            entry["request_memory"] = int(res["mem_mb"])
        if res.get("gpu", "").isdigit() and int(res["gpu"]) > 0:
            entry["request_gpus"] = int(res["gpu"])
        if entry:
            out[rule] = entry
    return out


def with_htcondor_set_resources(profile_text: str, rule_files: list[Path]) -> str:
    """The HTCondor profile text with its trailing ``set-resources:`` block regenerated."""
    head, sep, _ = profile_text.partition("\nset-resources:")
    if not sep:
        raise BatchError("the HTCondor profile has no trailing set-resources: block")
    first_line = "\nset-resources:" + _.split("\n", 1)[0] + "\n"
    lines = []
    for rule, entry in htcondor_set_resources(rule_resources(rule_files)).items():
        lines.append(f"  {rule}:".ljust(30) + f"# rule {rule}")
        for key, value in entry.items():
            what = "[MB], the rule's mem_mb" if key == "request_memory" else "the rule's gpu"
            lines.append(f"    {key}: {value}".ljust(30) + f"# {what}")
    return head + first_line + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``check-profile DIR...`` or ``check-args SNAKEMAKE_ARGS...``: exit 1 with the message."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["htcondor-resources"]:  # rewrite the profile's set-resources block
        profile_file = Path(args[1] if len(args) > 1 else "profiles/htcondor") / PROFILE_FILES[0]
        rules = sorted(Path(args[2] if len(args) > 2 else "workflow/rules").glob("*.smk"))
        profile_file.write_text(with_htcondor_set_resources(profile_file.read_text(), rules))
        print(f"updated the set-resources of {profile_file} from {len(rules)} rule files")
        return 0
    if not args or args[0] not in ("check-profile", "check-args"):
        print(
            "usage: python -m thetaflow.operations.batch "
            "{check-profile DIR... | check-args ARGS... | htcondor-resources [RULES_DIR]}",
            file=sys.stderr,
        )
        return 2
    profiles = args[1:] if args[0] == "check-profile" else profiles_in_args(args[1:])
    try:
        for profile in profiles:
            check_profile(profile)
    except BatchError as err:
        print(f"thetaflow: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
