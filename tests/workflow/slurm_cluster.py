"""A throw-away single-node SLURM cluster on localhost, for the integration tests.

``LocalSlurm`` installs Debian's SLURM and MariaDB packages when they are missing (as root,
through apt-get), then starts, each from its own generated configuration under a fresh
temporary directory and each listening on loopback ports chosen free at start:

- a private ``mariadbd`` (its own data directory; nothing of the system's database is used),
- ``slurmdbd`` on that database (``sacct``/``sacctmgr`` need it; the executor plugin uses both),
- ``slurmctld`` and one ``slurmd`` (this host, declared with ``cpus_per_core`` CPUs per real
  core, and one count-only ``gpu`` generic resource so that a rule's ``gpu=1`` request is
  scheduled and accounted like on a GPU partition; the jobs then run on the CPU),
  ``AuthType=auth/none`` so no munge daemon is needed.

It registers a cluster, an account and the calling user, and waits until the node is idle.
Every daemon it started is stopped by its PID (SIGTERM, then SIGKILL after a grace period)
in ``stop()``, which ``__exit__`` calls whether or not the start or the test failed. Each
wait has a timeout and raises ``SlurmError`` with the daemon's log tail, so a broken set-up
fails the test with a message instead of hanging it.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DEBIAN_PACKAGES = ["slurm-wlm", "slurmdbd", "mariadb-server", "mariadb-client"]
NEEDED_PROGRAMS = [
    "slurmctld",
    "slurmd",
    "slurmdbd",
    "sbatch",
    "srun",
    "sacct",
    "sacctmgr",
    "sinfo",
    "mariadbd",
    "mariadb-install-db",
    "mariadb",
]
CLUSTER = "thetaflow"
ACCOUNT = "thetaflow"
PARTITION = "debug"


class SlurmError(RuntimeError):
    """The local SLURM could not be installed, started or reached."""


def missing_programs() -> list[str]:
    """The programs of a SLURM + MariaDB installation that are not on PATH."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin"])
    return [p for p in NEEDED_PROGRAMS if shutil.which(p, path=path) is None]


def install_packages(timeout: float = 900) -> None:
    """Install Debian's SLURM, slurmdbd and MariaDB with apt-get (root only)."""
    if not missing_programs():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SlurmError(
            f"SLURM programs {missing_programs()} are missing and cannot be installed here "
            f"(needs root and apt-get): install the Debian packages {' '.join(DEBIAN_PACKAGES)}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *DEBIAN_PACKAGES],
    ):
        try:
            run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as err:
            raise SlurmError(f"`{' '.join(cmd)}` did not finish within {timeout:.0f} s") from err
        if run.returncode != 0:
            raise SlurmError(f"`{' '.join(cmd)}` failed:\n{(run.stdout + run.stderr)[-3000:]}")
    if missing_programs():
        raise SlurmError(f"still missing after apt-get install: {missing_programs()}")


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on loopback right now."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return f"(no log at {path})"


def _node_memory_mb() -> int:
    """Memory SLURM may hand out on this node: physical memory less 1 GiB for the system."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return max(1000, int(line.split()[1]) // 1024 - 1024)
    return 4000


def write_unreachable_config(path: Path) -> Path:
    """A slurm.conf whose controller and accounting ports (9, discard) nobody answers on."""
    path.write_text(
        "ClusterName=dead\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort=9\n"
        "AuthType=auth/none\nCredType=cred/none\n"
        "AccountingStorageType=accounting_storage/slurmdbd\n"
        "AccountingStorageHost=127.0.0.1\nAccountingStoragePort=9\n"
        "NodeName=localhost CPUs=1 State=UNKNOWN\n"
        f"PartitionName={PARTITION} Nodes=localhost Default=YES State=UP\n"
    )
    return path


class LocalSlurm:
    """Context manager: a running single-node SLURM with accounting, stopped on exit."""

    def __init__(self, start_timeout: float = 120, cpus_per_core: int = 1) -> None:
        self.start_timeout = start_timeout
        self.root = Path(tempfile.mkdtemp(prefix="tf-slurm-"))
        self.user = getpass.getuser()
        self.host = socket.gethostname().split(".")[0]
        # more CPUs than cores lets a job start while another waits for its status poll
        self.cpus = (os.cpu_count() or 1) * cpus_per_core
        self.memory_mb = _node_memory_mb()
        self.procs: dict[str, subprocess.Popen] = {}
        self._logs: dict[str, Path] = {}
        self.ctld_port, self.slurmd_port, self.dbd_port, self.db_port = free_ports(4)
        self.conf = self.root / "etc" / "slurm.conf"

    # ---- environment for clients (sbatch, sacct, snakemake) -------------------------------
    @property
    def env(self) -> dict[str, str]:
        """Environment under which SLURM client commands talk to this cluster."""
        path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"])
        return {**os.environ, "SLURM_CONF": str(self.conf), "USER": self.user, "PATH": path}

    def client(self, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a SLURM client command against this cluster; raise SlurmError on failure."""
        try:
            run = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as err:
            raise SlurmError(f"`{' '.join(cmd)}` did not answer within {timeout:.0f} s") from err
        if run.returncode != 0:
            raise SlurmError(
                f"`{' '.join(cmd)}` failed: {run.stderr.strip() or run.stdout.strip()}"
            )
        return run

    # ---- configuration -----------------------------------------------------------------
    def _write_configs(self) -> None:
        for sub in ("etc", "state", "spool", "log", "run", "db"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        r = self.root
        node_resources = f"CPUs={self.cpus} RealMemory={self.memory_mb}"
        self.conf.write_text(f"""\
# generated by tests/workflow/slurm_cluster.py: single node on loopback, no munge
ClusterName={CLUSTER}
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={self.ctld_port}
SlurmdPort={self.slurmd_port}
AuthType=auth/none
CredType=cred/none
SlurmUser={self.user}
SlurmdUser=root
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool/slurmd-%n
SlurmctldPidFile={r}/run/slurmctld.pid
SlurmdPidFile={r}/run/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={self.dbd_port}
AccountingStorageEnforce=associations
AccountingStoreFlags=job_comment
AccountingStorageTRES=gres/gpu
GresTypes=gpu
JobCompType=jobcomp/none
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
MessageTimeout=10
InactiveLimit=0
KillWait=5
NodeName={self.host} NodeAddr=127.0.0.1 {node_resources} Gres=gpu:1 State=UNKNOWN
PartitionName={PARTITION} Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
""")
        # one GPU that SLURM schedules and accounts; slurmd drops a GPU without a device
        # file, so /dev/null stands in (no device is bound: TaskPlugin=task/none)
        (self.root / "etc" / "gres.conf").write_text(
            f"AutoDetect=off\nNodeName={self.host} Name=gpu File=/dev/null\n"
        )
        dbd = self.root / "etc" / "slurmdbd.conf"
        dbd.write_text(f"""\
AuthType=auth/none
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={self.dbd_port}
SlurmUser={self.user}
PidFile={r}/run/slurmdbd.pid
LogFile={r}/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self.db_port}
StorageUser=root
StorageLoc=slurm_acct_db
""")
        dbd.chmod(0o600)  # slurmdbd refuses a readable-by-others config

    # ---- daemons -----------------------------------------------------------------------
    def _spawn(self, name: str, cmd: list[str]) -> None:
        log = self.root / "log" / f"{name}.out"
        self._logs[name] = log
        with open(log, "a") as out:  # a restarted daemon appends to its log
            self.procs[name] = subprocess.Popen(
                cmd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def _wait(self, what: str, ready, logs: list[Path]) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise SlurmError(
                        f"{name} exited with code {proc.returncode} while waiting for {what}:\n"
                        + "\n".join(_tail(p) for p in [self._logs[name], *logs])
                    )
            try:
                if ready():
                    return
            except SlurmError:
                pass
            time.sleep(0.5)
        raise SlurmError(
            f"timed out after {self.start_timeout:.0f} s waiting for {what}:\n"
            + "\n".join(_tail(p) for p in logs)
        )

    def _start_database(self) -> None:
        data, sock = self.root / "db" / "data", self.root / "run" / "mysqld.sock"
        init = subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={data}",
                f"--user={self.user}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            capture_output=True,
            text=True,
            timeout=self.start_timeout,
            env=self.env,
        )
        if init.returncode != 0:
            raise SlurmError(f"mariadb-install-db failed:\n{(init.stdout + init.stderr)[-3000:]}")
        self._spawn(
            "mariadbd",
            [
                "mariadbd",
                "--no-defaults",
                f"--datadir={data}",
                f"--socket={sock}",
                f"--port={self.db_port}",
                "--bind-address=127.0.0.1",
                f"--user={self.user}",
                f"--pid-file={self.root / 'run' / 'mariadbd.pid'}",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=64M",
                "--innodb-log-file-size=48M",
            ],
        )

        def db_up() -> bool:
            probe = subprocess.run(
                ["mariadb", "--no-defaults", f"--socket={sock}", "-uroot", "-e", "SELECT 1"],
                capture_output=True,
                timeout=10,
            )
            return probe.returncode == 0

        self._wait("MariaDB", db_up, [self._logs["mariadbd"]])

    def start(self) -> LocalSlurm:
        """Install if needed, write configs, start the daemons, register cluster and account."""
        install_packages()
        self._write_configs()
        log = self.root / "log"
        self._start_database()
        self._spawn("slurmdbd", ["slurmdbd", "-D"])
        self._wait(
            "slurmdbd",
            lambda: bool(self.client("sacctmgr", "-n", "list", "cluster", timeout=10)),
            [log / "slurmdbd.log"],
        )
        for args in (
            ["add", "cluster", CLUSTER],
            [
                "add",
                "account",
                ACCOUNT,
                f"Cluster={CLUSTER}",
                "Description=thetaflow tests",
                "Organization=thetaflow",
            ],
            ["add", "user", self.user, f"Account={ACCOUNT}", f"Cluster={CLUSTER}"],
        ):
            self.client("sacctmgr", "-i", *args)
        self._spawn("slurmctld", ["slurmctld", "-D", "-i"])
        self._wait(
            "slurmctld", lambda: bool(self.client("sinfo", timeout=10)), [log / "slurmctld.log"]
        )
        self._start_slurmd()
        return self

    def _start_slurmd(self) -> None:
        self._spawn("slurmd", ["slurmd", "-D", "-N", self.host])

        def node_up() -> bool:
            state = self.client("sinfo", "-h", "-N", "-o", "%T", timeout=10).stdout.split()
            return bool(state) and all(
                s.rstrip("*~#") in ("idle", "mixed", "allocated") for s in state
            )

        log = self.root / "log"
        self._wait("the node to come up", node_up, [log / "slurmd.log", log / "slurmctld.log"])

    def restart_slurmd(self, grace: float = 15) -> None:
        """Stop the node's slurmd (SIGTERM, as ``systemctl restart slurmd`` does) and start
        it again; the running jobs' slurmstepd processes live on in between."""
        proc = self.procs.pop("slurmd")
        proc.terminate()
        proc.wait(timeout=grace)
        self._start_slurmd()

    def cancel_jobs(self, timeout: float = 30) -> None:
        """Cancel this cluster's remaining jobs and wait (bounded) until none is left."""
        ctld = self.procs.get("slurmctld")
        if ctld is None or ctld.poll() is not None:
            return
        try:
            self.client("scancel", "-u", self.user, timeout=10)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not self.client("squeue", "-h", "-u", self.user, timeout=10).stdout.strip():
                    return
                time.sleep(1)
        except SlurmError:
            pass

    def stop(self, grace: float = 15) -> None:
        """Cancel leftover jobs, stop every daemon this object started, by PID (reverse
        order), then remove its files."""
        self.cancel_jobs()
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=grace)
                except ProcessLookupError:
                    pass
        self.procs.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def logs(self) -> str:
        """Tails of every daemon log, for failure messages."""
        return "\n".join(
            f"--- {p.name}\n{_tail(p, 1500)}" for p in sorted((self.root / "log").glob("*"))
        )

    def __enter__(self) -> LocalSlurm:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
