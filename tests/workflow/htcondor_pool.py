"""A throw-away personal HTCondor pool on localhost, for the integration tests.

Where HTCondor comes from. Debian 12 (bookworm) has no HTCondor package; Debian 13 (trixie)
has one (source package ``condor``, 23.9.6), but it needs trixie's C library (libc6 >= 2.38,
libstdc++6 >= 14), so ``apt-get install`` on an older Debian would have to upgrade the system's
base libraries. ``fetch_condor`` therefore never installs anything: it resolves Debian 13's
``condor`` package and its libraries with apt-get under a private APT directory (the Debian
mirror's trixie suite, checked with the system's Debian archive keyring), unpacks them with
``dpkg-deb -x`` into a cache directory, checks that the daemons' libraries all resolve inside
it, and writes one small wrapper per HTCondor program that starts it through trixie's own
dynamic loader with trixie's libraries (``ld.so --library-path``), so that neither the system
nor the jobs (which the daemons start with the system's libraries) see them. The cache is
``~/.cache/thetaflow/htcondor`` (``THETAFLOW_HTCONDOR_CACHE`` moves it), ~120 MB. The PyPI
``htcondor`` wheels hold only the Python bindings and their libraries, no daemons; they and
``snakemake-executor-plugin-htcondor`` (the versions in constraints.txt) go into the same cache
with ``pip install --target`` when the venv lacks them (the ``[htcondor]`` extra).

The pool. ``LocalHTCondor`` writes a configuration under a fresh temporary directory and starts
``condor_master``, which starts a collector (on a loopback port chosen free at start), a
negotiator, a schedd and one startd (one partitionable slot: this host's cores and memory). It
is a personal pool: every daemon runs as one unprivileged user, and so does every job. The
schedd never accepts a job owned by root ("Setting job owner to root is not permitted"), and a
daemon running as root always switches to the job owner's account, which may not read a
root-only Python (a venv whose interpreter is under /root, mode 0700). So, started as root, the
pool runs in a user namespace (``unshare --user``) where root's uid is seen as ``nobody``:
HTCondor finds itself unprivileged and switches no ids, and its jobs, uid 0 outside the
namespace without root's capabilities, own root's files as root does; clients (Snakemake
through the Python bindings, condor_q, condor_history) claim that user
(``SEC_CLAIMTOBE_USER``, loopback only). Started as another user, the pool simply runs as that
user. ``stop()`` removes leftover jobs, stops ``condor_master`` by its PID (SIGTERM: it shuts its
daemons down; SIGKILL of its process group after a grace period), then deletes the directory.
Each wait has a timeout and raises ``HTCondorError`` with the daemons' log tails.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import importlib.util
import os
import platform
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SUITE = "trixie"  # Debian 13: the Debian release with an HTCondor package (condor 23.9.6)
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
CACHE = Path(
    os.environ.get("THETAFLOW_HTCONDOR_CACHE", Path.home() / ".cache" / "thetaflow" / "htcondor")
)
PYTHON_PACKAGES = ["htcondor", "snakemake-executor-plugin-htcondor"]
DAEMONS = ("Collector", "Negotiator", "Scheduler", "Machine")  # ad types of a ready pool
NAMESPACE_USER = "nobody"  # who root is inside the pool's user namespace


class HTCondorError(RuntimeError):
    """The local HTCondor pool could not be fetched, started or reached."""


def _run(cmd: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as err:
        raise HTCondorError(f"`{' '.join(cmd)}` did not finish within {timeout:.0f} s") from err
    except OSError as err:
        raise HTCondorError(f"`{' '.join(cmd)}` could not start: {err}") from err
    if run.returncode != 0:
        raise HTCondorError(f"`{' '.join(cmd)}` failed:\n{(run.stdout + run.stderr)[-3000:]}")
    return run


def _is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _wanted_deb(name: str) -> bool:
    """The packages unpacked: condor and the shared libraries its daemons load (not the
    interpreters and scripts the package also depends on)."""
    package = name.split("_", 1)[0]
    if package == "condor":
        return True
    skipped = ("libpython", "libperl", "libjs-")
    return package.startswith("lib") and not package.startswith(skipped) and "perl" not in package


def fetch_condor(cache: Path = CACHE, timeout: float = 900) -> Path:
    """Debian 13's HTCondor unpacked under ``cache`` (once): the directory holding the
    unpacked tree (``root/``) and the wrappers (``wrap/bin``, ``wrap/sbin``)."""
    home = cache / f"debian-{DEBIAN_SUITE}"
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(home.parent / f".{home.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one fetch at a time (pytest-xdist workers)
        if not (home / "complete").is_file():
            shutil.rmtree(home, ignore_errors=True)
            _unpack_condor(home, timeout)
            (home / "complete").write_text(_condor_version(home) + "\n")
    return home


def _unpack_condor(home: Path, timeout: float) -> None:
    if platform.machine() != "x86_64":
        raise HTCondorError(f"only x86_64 is set up here, not {platform.machine()}")
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise HTCondorError(
                f"{tool} is missing: the test unpacks Debian {DEBIAN_SUITE}'s HTCondor "
                "packages with apt-get and dpkg-deb (no HTCondor daemons exist on PyPI)"
            )
    if not DEBIAN_KEYRING.is_file():
        raise HTCondorError(f"{DEBIAN_KEYRING} is missing (Debian package debian-archive-keyring)")
    apt = home / "apt"
    for sub in ("etc/apt/apt.conf.d", "etc/apt/preferences.d", "etc/apt/sources.list.d"):
        (apt / sub).mkdir(parents=True)
    for sub in ("var/lib/apt/lists/partial", "var/cache/apt/archives/partial", "var/lib/dpkg"):
        (apt / sub).mkdir(parents=True)
    (apt / "var/lib/dpkg/status").touch()  # nothing installed: apt resolves every dependency
    (apt / "etc/apt/sources.list").write_text(
        f"deb [signed-by={DEBIAN_KEYRING}] {DEBIAN_MIRROR} {DEBIAN_SUITE} main\n"
    )
    conf = home / "apt.conf"
    conf.write_text(
        f'Dir "{apt}/";\n'
        f'Dir::State::status "{apt}/var/lib/dpkg/status";\n'
        'APT::Architecture "amd64";\n'
        'APT::Install-Recommends "false";\n'
        'Acquire::Languages "none";\n'
        'APT::Sandbox::User "root";\n'  # the cache may sit where apt's _apt user cannot write
    )
    env = {**os.environ, "APT_CONFIG": str(conf), "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update", "-q"], timeout, env=env)
    _run(["apt-get", "install", "-q", "-y", "--download-only", "condor"], timeout, env=env)
    archives = apt / "var/cache/apt/archives"
    root = home / "root"
    for deb in sorted(archives.glob("*.deb")):
        if _wanted_deb(deb.name):
            _run(["dpkg-deb", "-x", str(deb), str(root)], timeout)
    shutil.rmtree(apt)  # the .deb files and package lists: only the unpacked tree is kept
    loader = root / "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    if not loader.is_file() or not (root / "usr/sbin/condor_master").is_file():
        raise HTCondorError(f"Debian {DEBIAN_SUITE}'s condor package did not unpack under {root}")
    library_path = f"{root}/usr/lib:{root}/usr/lib/x86_64-linux-gnu"
    for sub in ("bin", "sbin"):
        (home / "wrap" / sub).mkdir(parents=True)
        for program in sorted((root / "usr" / sub).glob("condor_*")):
            wrapper = home / "wrap" / sub / program.name
            if not _is_elf(program):  # a script: it calls the other programs through PATH
                wrapper.symlink_to(program)
                continue
            wrapper.write_text(
                f'#!/bin/sh\nexec {loader} --library-path {library_path} --argv0 "$0" '
                f'{program} "$@"\n'
            )
            wrapper.chmod(0o755)
    for daemon in ("master", "collector", "negotiator", "schedd", "startd", "starter", "shadow"):
        listed = _run(
            [str(loader), "--library-path", library_path, "--list"]
            + [str(root / f"usr/sbin/condor_{daemon}")],
            60,
        ).stdout
        if "not found" in listed:
            raise HTCondorError(f"condor_{daemon} misses libraries:\n{listed}")


def _condor_version(home: Path) -> str:
    return _run([str(home / "wrap/bin/condor_version")], 60).stdout.splitlines()[0]


def fetch_python_bindings(cache: Path = CACHE, timeout: float = 600) -> Path | None:
    """The directory to put on PYTHONPATH for the executor plugin and the ``htcondor``
    bindings (versions from constraints.txt); None when this Python has them already."""
    if importlib.util.find_spec("snakemake_executor_plugin_htcondor") is not None:
        return None
    target = cache / f"python{sys.version_info.major}.{sys.version_info.minor}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "complete").is_file():
            shutil.rmtree(target, ignore_errors=True)
            _run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
                + ["--target", str(target), "-c", str(REPO / "constraints.txt")]
                + PYTHON_PACKAGES,
                timeout,
            )
            (target / "complete").write_text(" ".join(PYTHON_PACKAGES) + "\n")
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return f"(no log at {path})"


class LocalHTCondor:
    """Context manager: a running personal HTCondor pool on loopback, stopped on exit."""

    def __init__(self, start_timeout: float = 120) -> None:
        self.start_timeout = start_timeout
        self.home = fetch_condor()
        self.python = fetch_python_bindings()
        self.root = Path(tempfile.mkdtemp(prefix="tf-htcondor-"))
        self.config = self.root / "condor_config"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self.user = NAMESPACE_USER if self.as_root else getpass.getuser()
        self.master: subprocess.Popen | None = None

    # ---- environment for clients (condor_q, condor_history, snakemake) ------------------
    @property
    def env(self) -> dict[str, str]:
        """Environment under which HTCondor clients and the bindings talk to this pool."""
        env = {
            **os.environ,
            "CONDOR_CONFIG": str(self.config),
            "PATH": os.pathsep.join([str(self.home / "wrap/bin"), os.environ.get("PATH", "")]),
        }
        if self.python is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(self.python), os.environ.get("PYTHONPATH", "")) if p
            )
        return env

    def client(self, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run an HTCondor client program of this pool; raise HTCondorError on failure."""
        return _run([str(self.home / "wrap/bin" / cmd[0]), *cmd[1:]], timeout, env=self.env)

    # ---- configuration -----------------------------------------------------------------
    def _write_config(self) -> None:
        for sub in ("log", "spool", "execute", "lock", "run"):
            (self.root / sub).mkdir()
        release, wrap = self.home / "root/usr", self.home / "wrap"
        # root's clients (condor_q, condor_history) need an account for "condor priv"; the
        # daemons, unprivileged in their namespace, ignore it
        root_clients = "CONDOR_IDS = 0.0\n" if self.as_root else ""
        self.config.write_text(f"""\
# generated by tests/workflow/htcondor_pool.py: a personal pool on loopback
RELEASE_DIR = {release}
BIN = {wrap}/bin
SBIN = {wrap}/sbin
LIB = {release}/lib/condor
LIBEXEC = {release}/libexec/condor
SHARE = {release}/share/condor
LOCAL_DIR = {self.root}
ETC = {self.root}
LOCAL_CONFIG_DIR =
LOG = $(LOCAL_DIR)/log
SPOOL = $(LOCAL_DIR)/spool
EXECUTE = $(LOCAL_DIR)/execute
LOCK = $(LOCAL_DIR)/lock
RUN = $(LOCAL_DIR)/run
use ROLE : Personal
CONDOR_HOST = 127.0.0.1
COLLECTOR_HOST = 127.0.0.1:{self.port}
NETWORK_INTERFACE = 127.0.0.1
BIND_ALL_INTERFACES = False
USE_SHARED_PORT = False
UID_DOMAIN = thetaflow
FILESYSTEM_DOMAIN = thetaflow
# one user runs every daemon and every job; clients on loopback claim to be that user
SEC_DEFAULT_AUTHENTICATION_METHODS = CLAIMTOBE
SEC_CLAIMTOBE_USER = {self.user}
{root_clients}ALLOW_READ = *
ALLOW_WRITE = *
ALLOW_DAEMON = *
ALLOW_NEGOTIATOR = *
ALLOW_ADMINISTRATOR = *
SEC_KNOWN_HOSTS = $(LOCAL_DIR)/known_hosts
CONDOR_ADMIN =
MAIL = /bin/true
# run every match at once, never suspend or evict; short cycles for a quick test
START = True
SUSPEND = False
PREEMPT = False
KILL = False
UPDATE_INTERVAL = 5
MASTER_UPDATE_INTERVAL = 5
NEGOTIATOR_INTERVAL = 2
NEGOTIATOR_CYCLE_DELAY = 1
SCHEDD_INTERVAL = 5
SCHEDD_MIN_INTERVAL = 1
STARTER_UPDATE_INTERVAL = 5
""")

    # ---- daemons -----------------------------------------------------------------------
    def _ready(self) -> bool:
        ads = self.client("condor_status", "-any", "-af", "MyType", timeout=10).stdout.split()
        if not set(DAEMONS) <= set(ads):
            return False
        self.client("condor_q", "-totals", timeout=10)  # the schedd answers
        return True

    def start(self) -> LocalHTCondor:
        """Write the configuration, start condor_master and wait for every daemon."""
        self._write_config()
        cmd = [str(self.home / "wrap/sbin/condor_master"), "-f"]
        if self.as_root:
            user = pwd.getpwnam(NAMESPACE_USER)
            cmd = ["unshare", "--user", f"--map-user={user.pw_uid}", f"--map-group={user.pw_gid}"]
            cmd += [str(self.home / "wrap/sbin/condor_master"), "-f"]
        with open(self.root / "log" / "master.out", "w") as out:
            self.master = subprocess.Popen(
                cmd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.master.poll() is not None:
                raise HTCondorError(
                    f"condor_master exited with code {self.master.returncode}:\n{self.logs()}"
                )
            try:
                if self._ready():
                    return self
            except HTCondorError:
                pass
            time.sleep(1)
        raise HTCondorError(
            f"the pool was not ready after {self.start_timeout:.0f} s:\n{self.logs()}"
        )

    def remove_jobs(self, timeout: float = 30) -> None:
        """Remove this pool's remaining jobs and wait (bounded) until none is left."""
        if self.master is None or self.master.poll() is not None:
            return
        try:
            if not self.client("condor_q", "-af", "ClusterId", timeout=10).stdout.strip():
                return
            self.client("condor_rm", "-all", timeout=10)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not self.client("condor_q", "-af", "ClusterId", timeout=10).stdout.strip():
                    return
                time.sleep(1)
        except HTCondorError:
            pass

    def stop(self, grace: float = 30) -> None:
        """Remove leftover jobs, stop condor_master by its PID (it stops its daemons), then
        remove the pool's files."""
        self.remove_jobs()
        proc = self.master
        if proc is not None and proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # its session: the daemons it started
                proc.wait(timeout=grace)
            except ProcessLookupError:
                pass
        self.master = None
        shutil.rmtree(self.root, ignore_errors=True)

    def logs(self) -> str:
        """Tails of every daemon log, for failure messages."""
        return "\n".join(
            f"--- {p.name}\n{_tail(p, 1500)}"
            for p in sorted((self.root / "log").glob("*"))
            if p.is_file()
        )

    def __enter__(self) -> LocalHTCondor:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
