"""Batch profiles: each is a valid Snakemake 8+ profile with a comment on every entry; a
missing executor plugin gets a message naming the package; unreachable SLURM fails fast;
the HTCondor profile requests the memory each rule declares."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import yaml

from thetaflow.operations.batch import (
    BatchError,
    check_profile,
    check_slurm,
    htcondor_set_resources,
    main,
    plugin_package,
    profile_executor,
    profiles_in_args,
    put_on_job_pythonpath,
    rule_resources,
)

REPO = Path(__file__).resolve().parents[3]
PROFILES = sorted((REPO / "profiles").glob("*/config.v8+.yaml"))
RULE_FILES = sorted((REPO / "workflow/rules").glob("*.smk"))


def test_the_three_profiles_exist():
    assert {p.parent.name for p in PROFILES} >= {"default", "slurm", "htcondor"}


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.parent.name)
def test_every_profile_entry_has_a_comment(path):
    assert isinstance(yaml.safe_load(path.read_text()), dict)
    for number, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            assert "#" in line, f"{path.parent.name}/{path.name}:{number}: no comment: {line!r}"


def test_profiles_name_their_executors():
    assert profile_executor(REPO / "profiles/default") == "local"
    assert profile_executor(REPO / "profiles/slurm") == "slurm"
    assert profile_executor(REPO / "profiles/htcondor") == "htcondor"
    assert check_profile(REPO / "profiles/slurm") == "slurm"  # a project dependency


def test_a_missing_executor_plugin_names_the_package_to_install(tmp_path, capsys):
    (tmp_path / "config.v8+.yaml").write_text("executor: nosuchfarm  # test\n")
    with pytest.raises(BatchError, match="snakemake-executor-plugin-nosuchfarm"):
        check_profile(tmp_path)
    assert main(["check-args", "--cores", "2", f"--profile={tmp_path}"]) == 1
    assert "install the package snakemake-executor-plugin-nosuchfarm" in capsys.readouterr().err
    assert main(["check-profile", str(REPO / "profiles/default")]) == 0
    assert plugin_package("htcondor") == "snakemake-executor-plugin-htcondor"


def test_profiles_in_args():
    assert profiles_in_args(["-n", "--profile", "a", "--profile=b", "x"]) == ["a", "b"]


def test_a_directory_without_profile_is_an_error(tmp_path):
    with pytest.raises(BatchError, match="no config.v8"):
        check_profile(tmp_path)


@pytest.mark.skipif(
    shutil.which("sinfo") is None and shutil.which("sinfo", path="/usr/bin") is None,
    reason="SLURM client programs not installed",
)
def test_unreachable_slurm_fails_fast_with_a_clear_message(tmp_path):
    conf = tmp_path / "slurm.conf"
    conf.write_text(
        "ClusterName=dead\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort=9\n"
        "AuthType=auth/none\nCredType=cred/none\n"
        "AccountingStorageType=accounting_storage/slurmdbd\n"
        "AccountingStorageHost=127.0.0.1\nAccountingStoragePort=9\n"
        "NodeName=localhost CPUs=1 State=UNKNOWN\n"
        "PartitionName=debug Nodes=localhost Default=YES State=UP\n"
    )
    env = {**os.environ, "SLURM_CONF": str(conf), "PATH": os.environ["PATH"] + ":/usr/bin"}
    begin = time.monotonic()
    with pytest.raises(BatchError, match="SLURM is not reachable.*slurmctld") as err:
        check_slurm(timeout=20, env=env)
    assert str(conf) in str(err.value)
    assert time.monotonic() - begin < 25


def fake_slurm(bin_dir: Path, **programs: str) -> dict[str, str]:
    """Fake SLURM client programs (shell bodies) in ``bin_dir``, the only directory on PATH;
    each records its arguments in ``<name>.args``."""
    bin_dir.mkdir(exist_ok=True)
    for name, body in programs.items():
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" > "{bin_dir}/{name}.args"\n{body}\n')
        script.chmod(0o755)
    return {"PATH": str(bin_dir), "SLURM_CONF": "/site/slurm.conf"}


def test_slurm_check_with_fake_client_programs(tmp_path):
    """The check's logic on fake ``sinfo``/``sacctmgr``: each missing, failing, hanging or
    answering program gives its own outcome, whether or not SLURM is installed here."""
    ok = "echo debug; exit 0"
    # a controller and accounting daemon that answer: no error, each probe run as documented
    env = fake_slurm(tmp_path / "ok", sinfo=ok, sacctmgr="echo dead; exit 0")
    assert check_slurm(timeout=5, env=env) is None
    assert (tmp_path / "ok/sinfo.args").read_text().split() == ["-h", "-o", "%P"]
    assert (tmp_path / "ok/sacctmgr.args").read_text().split() == ["-n", "list", "cluster"]
    # no client programs at all
    env = fake_slurm(tmp_path / "none")
    with pytest.raises(BatchError, match=r"`sinfo` is not installed on this host"):
        check_slurm(timeout=5, env=env)
    # the controller refuses: its last message line and the config file are named
    env = fake_slurm(
        tmp_path / "down",
        sinfo="echo 'sinfo: debug' >&2; "
        "echo 'sinfo: error: Unable to contact slurm controller' >&2; exit 1",
        sacctmgr=ok,
    )
    with pytest.raises(
        BatchError,
        match=r"`sinfo -h -o %P` failed for the SLURM controller \(slurmctld\) "
        r"\(SLURM_CONF=/site/slurm.conf\): sinfo: error: Unable to contact slurm controller$",
    ):
        check_slurm(timeout=5, env=env)
    assert not (tmp_path / "down/sacctmgr.args").exists()  # stops at the first failure
    # the controller answers, accounting is not installed
    env = fake_slurm(tmp_path / "noacct", sinfo=ok)
    with pytest.raises(BatchError, match=r"`sacctmgr` is not installed"):
        check_slurm(timeout=5, env=env)
    # accounting hangs: the check gives up after its timeout instead of waiting
    env = fake_slurm(tmp_path / "hang", sinfo=ok, sacctmgr=f"exec {shutil.which('sleep')} 30")
    begin = time.monotonic()
    with pytest.raises(
        BatchError,
        match=r"SLURM accounting \(slurmdbd\) did not answer `sacctmgr -n list cluster` "
        r"within 1 s \(SLURM_CONF=/site/slurm.conf\)",
    ):
        check_slurm(timeout=1, env=env)
    assert time.monotonic() - begin < 10
    # a failing program without any message still fails, naming its exit status
    env = fake_slurm(tmp_path / "silent", sinfo="exit 3")
    with pytest.raises(BatchError, match=r"\(SLURM_CONF=/site/slurm.conf\): 3$"):
        check_slurm(timeout=5, env=env)


def test_every_rule_declares_threads_memory_and_runtime():
    resources = rule_resources(RULE_FILES)
    assert len(resources) > 10
    for rule, entry in resources.items():
        for key in ("threads", "mem_mb", "runtime"):
            assert key in entry, f"rule {rule}: no {key}"


def test_htcondor_profile_requests_what_each_rule_declares():
    """HTCondor's plugin ignores mem_mb/gpu: the profile must carry request_memory per rule."""
    profile = yaml.safe_load((REPO / "profiles/htcondor/config.v8+.yaml").read_text())
    wanted = htcondor_set_resources(rule_resources(RULE_FILES))
    assert profile.get("set-resources") == wanted, (
        "profiles/htcondor set-resources is out of date; regenerate it with "
        "`python -m thetaflow.operations.batch htcondor-resources`"
    )


def test_jobs_get_the_checkout_first_on_their_pythonpath_once(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/opt/site")
    put_on_job_pythonpath("/repo/src")
    put_on_job_pythonpath("/repo/src")  # the Snakefile is parsed again inside each job
    assert os.environ["PYTHONPATH"] == os.pathsep.join(["/repo/src", "/opt/site"])
    monkeypatch.delenv("PYTHONPATH")
    put_on_job_pythonpath("/repo/src")
    assert os.environ["PYTHONPATH"] == "/repo/src"
