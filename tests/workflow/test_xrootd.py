"""root:// inputs against a real XRootD server: Debian's ``xrootd`` on a free localhost port,
exporting the directory of the real CMS NanoAOD test files read-only, in place.

Ingestion over ``root://localhost:<port>//<directory>/<file>`` (the ingest rule's library
call, then the features rule's) must write byte for byte the event, cutflow and feature
files of the local read, for a Run 2 TTree (``nano_dy.root``) and its RNTuple twin
(``nano_dy_rntuple.root``: uproot 5.7 reads RNTuple through the same fsspec source). A file
the server does not have, and a port nothing listens on, must fail with an error naming the
sample and the URL, the latter within :data:`UNREACHABLE_LIMIT_S` (the XRootD client's own
defaults retry for minutes; :mod:`thetaflow.ingestion.remote` bounds them).

The fixture installs ``xrootd-server`` with apt-get when the program is missing and this is
root (``workflow/install_system_packages.sh`` lists it too), else the tests skip saying so.
xrootd refuses to run as root, so as root it runs as ``nobody`` (``-R``) from a scratch
directory under /tmp that user may enter. It is stopped by its PID (SIGTERM, then SIGKILL)
whatever the tests did.
"""

from __future__ import annotations

import copy
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from thetaflow.core.errors import ThetaflowError
from thetaflow.features.compute import build_features
from thetaflow.ingestion.ingest import ingest_from_config
from thetaflow.ingestion.remote import RemoteFileError, configure_xrootd
from thetaflow.ingestion.variations import variations

pytestmark = pytest.mark.xrootd

DEBIAN_PACKAGE = "xrootd-server"
#: the unprivileged user xrootd runs as when the tests run as root
RUN_AS = "nobody"
START_TIMEOUT_S = 15
UNREACHABLE_LIMIT_S = 30
#: a selection loose enough that the 40-event Drell-Yan file selects events
LOOSE_SELECTION = {
    "objects": {
        "muon": "pt > 5 and abs(eta) < 2.4",
        "electron": "pt > 5 and abs(eta) < 2.5",
        "jet": "pt > 15 and abs(eta) < 2.5 and jetId >= 2 and (puId >= 4 or pt > 50)",
        "jet_lepton_min_dr": 0.4,
    },
    "cuts": [
        {"name": "two_leptons", "expr": "n_leptons == 2"},
        {"name": "two_jets", "expr": "n_jets >= 2"},
    ],
}


def xrootd_program() -> str:
    """The ``xrootd`` program, installed from Debian as root when missing; skips otherwise."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/bin", "/usr/sbin"])
    found = shutil.which("xrootd", path=search)
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(
            f"no xrootd program, and it cannot be installed here (needs root and apt-get): "
            f"install Debian's {DEBIAN_PACKAGE} (`bash workflow/install_system_packages.sh` "
            f"as root, or `sudo apt-get install {DEBIAN_PACKAGE}`)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", DEBIAN_PACKAGE],
    ):
        run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, (
            f"`{' '.join(cmd)}` failed:\n{(run.stdout + run.stderr)[-3000:]}"
        )
    found = shutil.which("xrootd", path=search)
    assert found, f"no xrootd program after installing {DEBIAN_PACKAGE}"
    return found


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return f"(no log at {path})"


@dataclass(frozen=True)
class Server:
    """A running XRootD server: ``url(name)`` is the root:// URL of a file it exports."""

    port: int
    directory: Path

    def url(self, name: str) -> str:
        return f"root://localhost:{self.port}/{self.directory / name}"


@pytest.fixture(scope="module")
def xrootd_server(real_nanoaod: Path) -> Iterator[Server]:
    """xrootd exporting ``real_nanoaod`` read-only on a free localhost port, until the
    module's tests are done."""
    program = xrootd_program()
    directory = real_nanoaod.resolve()
    scratch = Path(tempfile.mkdtemp(prefix="thetaflow-xrootd-"))
    proc = None
    try:
        run_as = []
        if os.geteuid() == 0:
            user = pwd.getpwnam(RUN_AS)
            os.chown(scratch, user.pw_uid, user.pw_gid)
            run_as = ["-R", RUN_AS]
        scratch.chmod(0o755)
        port = free_port()
        log = scratch / "xrootd.log"
        config = scratch / "xrootd.cfg"
        config.write_text(
            f"all.export {directory} r/o\nall.adminpath {scratch}\nall.pidpath {scratch}\n"
        )
        proc = subprocess.Popen(
            [program, *run_as, "-p", str(port), "-c", str(config), "-l", str(log)],
            cwd=scratch,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"xrootd exited with {proc.returncode} at start:\n{_tail(log)}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"xrootd did not listen within {START_TIMEOUT_S} s:\n{_tail(log)}")
                time.sleep(0.1)
        yield Server(port, directory)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(scratch, ignore_errors=True)


def config_for(default_config: dict, files: list[str]) -> dict:
    """The default analysis with the loose selection and one simulated sample ``dy``."""
    config = copy.deepcopy(default_config)
    config["selection"] = LOOSE_SELECTION
    config["samples"] = {"dy": {"kind": "background", "xsec_pb": 5765.4, "files": files}}
    return config


def ingest_and_features(config: dict, out: Path) -> dict[str, Path]:
    """The ingest rule's and the features rule's library calls for sample ``dy``: every file
    they write, by name."""
    out.mkdir()
    files = config["samples"]["dy"]["files"]
    names = [v.name for v in variations(config, is_data=False)]
    events = {v: out / f"events_{v}.parquet" for v in names}
    cutflow = out / "cutflow.json"
    ingest_from_config(config, "dy", files, {v: str(p) for v, p in events.items()}, str(cutflow))
    features = {v: out / f"features_{v}.parquet" for v in names}
    for v in names:
        assert build_features(config, "dy", str(events[v]), str(cutflow), str(features[v])) > 0
    return {"cutflow.json": cutflow} | {p.name: p for p in [*events.values(), *features.values()]}


@pytest.mark.parametrize("name", ["nano_dy.root", "nano_dy_rntuple.root"])
def test_remote_read_writes_the_files_of_the_local_read(
    xrootd_server, default_config, tmp_path, name
):
    local_file = str(xrootd_server.directory / name)
    url = xrootd_server.url(name)
    local = ingest_and_features(config_for(default_config, [local_file]), tmp_path / "local")
    remote = ingest_and_features(config_for(default_config, [url]), tmp_path / "remote")
    assert sorted(local) == sorted(remote) and len(local) == 7  # 3 variations x 2 + cutflow
    for file, path in local.items():
        if file == "cutflow.json":
            # the same numbers, Runs-tree normalisation (nano_dy.root) included; only the
            # recorded file names differ
            local_flow, remote_flow = (
                json.loads(path.read_text()),
                json.loads(remote[file].read_text()),
            )
            assert (local_flow.pop("files"), remote_flow.pop("files")) == ([local_file], [url])
            assert remote_flow == local_flow and local_flow["selected"]["nominal"] > 0
        else:
            assert remote[file].read_bytes() == path.read_bytes(), f"{file} differs over root://"


def test_missing_remote_file_names_the_url(xrootd_server, default_config, tmp_path):
    url = xrootd_server.url("no_such_file.root")
    with pytest.raises(RemoteFileError) as caught:
        ingest_and_features(config_for(default_config, [url]), tmp_path / "out")
    message = str(caught.value)
    assert f"sample 'dy': opening {url} failed: no such file on the server" in message
    assert not list((tmp_path / "out").iterdir())  # no partial output


def test_unreachable_server_fails_in_bounded_time_naming_the_url(default_config, tmp_path):
    """No server needed: a port nothing listens on. The XRootD defaults would retry for
    10 minutes; the configured time-outs give up after one connection window."""
    url = f"root://localhost:{free_port()}//store/nano_dy.root"
    start = time.monotonic()
    with pytest.raises(ThetaflowError) as caught:
        ingest_and_features(config_for(default_config, [url]), tmp_path / "out")
    elapsed = time.monotonic() - start
    assert elapsed < UNREACHABLE_LIMIT_S, f"gave up after {elapsed:.0f} s"
    window = configure_xrootd()["ConnectionWindow"]  # in force: 10 s unless XRD_* set it
    message = str(caught.value)
    assert f"sample 'dy': opening {url} failed: the server did not answer" in message
    assert f"connection window {window} s" in message
