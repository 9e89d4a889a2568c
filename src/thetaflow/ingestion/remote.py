"""Remote inputs: NanoAOD files given as URLs (``root://`` over XRootD, also ``https://``...).

uproot opens every path through fsspec; a ``root://`` URL goes to ``fsspec-xrootd``, which
drives the XRootD client of the ``xrootd`` Python bindings (both project dependencies,
imported here only when a ``root://`` URL is opened). The XRootD client's own defaults retry
an unreachable server for minutes (five 120 s connection windows) and wait 30 minutes for a
request; a batch job then hangs instead of failing. Before a ``root://`` URL is opened the
client gets bounded time-outs (:data:`XROOTD_TIMEOUTS`), unless the user set the client's
variable (``XRD_CONNECTIONWINDOW``, ``XRD_CONNECTIONRETRY``, ``XRD_REQUESTTIMEOUT``), which
the client keeps. Failures of a remote file are raised as :class:`RemoteFileError`, naming
the sample, the URL and the likely cause (no such file, server unreachable, permission).
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass

import uproot

from thetaflow.core.errors import ThetaflowError
from thetaflow.core.samples import REMOTE_PREFIXES

XROOTD_PREFIX = "root://"
#: the Python packages that read ``root://`` URLs (import name -> pip name)
XROOTD_PACKAGES = {"fsspec_xrootd": "fsspec-xrootd", "XRootD": "xrootd"}


class RemoteFileError(ThetaflowError, OSError):
    """A remote input that cannot be opened or read: names the sample, the URL and why."""


@dataclass(frozen=True)
class XRootDTimeouts:
    """Time-outs of the XRootD client: an unreachable server fails after about
    ``connection_window_s`` × (``connection_retry`` - 1) s (one window more for a host that
    drops packets), a stalled request after ``request_timeout_s``."""

    connection_window_s: int = 10
    connection_retry: int = 2
    request_timeout_s: int = 300

    def settings(self) -> dict[str, int]:
        """The XRootD client's names of the settings and their values."""
        return {
            "ConnectionWindow": self.connection_window_s,
            "ConnectionRetry": self.connection_retry,
            "RequestTimeout": self.request_timeout_s,
        }


XROOTD_TIMEOUTS = XRootDTimeouts()


def is_remote(path: str) -> bool:
    """Whether ``path`` is a URL read over the network rather than a local file."""
    return path.startswith(REMOTE_PREFIXES)


def missing_xrootd_packages() -> list[str]:
    """The pip names of the packages that read ``root://`` URLs and are not installed."""
    return [
        pip for module, pip in XROOTD_PACKAGES.items() if importlib.util.find_spec(module) is None
    ]


def configure_xrootd(timeouts: XRootDTimeouts = XROOTD_TIMEOUTS) -> dict[str, int]:
    """Give the XRootD client ``timeouts`` (a setting the user's ``XRD_*`` variable set is
    kept: the client refuses to change it) and return the settings in force."""
    from XRootD import client  # optional until a root:// URL is read

    for name, value in timeouts.settings().items():
        client.EnvPutInt(name, value)
    return {name: int(client.EnvGetInt(name)) for name in timeouts.settings()}


def open_root(path: str, sample: str) -> uproot.ReadOnlyDirectory:
    """``uproot.open(path)``: a local path as it is (its errors are the caller's to name); a
    URL inside :func:`remote_errors` (for ``root://``, with the bounded XRootD time-outs)."""
    if not is_remote(path):
        return uproot.open(path)
    with remote_errors(sample, path, "opening"):
        return uproot.open(path)


@contextlib.contextmanager
def remote_errors(sample: str, path: str, what: str) -> Iterator[None]:
    """For a remote ``path``: a ``root://`` URL's XRootD client given its time-outs, then an
    OSError of the transfer while doing ``what`` raised as a :class:`RemoteFileError` naming
    ``sample``, the URL and the likely cause. For a local path, nothing."""
    if not is_remote(path):
        yield
        return
    timeouts = None
    if path.startswith(XROOTD_PREFIX):
        missing = missing_xrootd_packages()
        if missing:
            raise RemoteFileError(
                f"sample '{sample}': {what} {path} needs the Python package(s) "
                f"{', '.join(missing)} (pip install -c constraints.txt "
                f"{' '.join(XROOTD_PACKAGES.values())})"
            )
        timeouts = configure_xrootd()
    try:
        yield
    except RemoteFileError:
        raise
    except OSError as err:
        cause = failure_cause(err, timeouts)
        raise RemoteFileError(f"sample '{sample}': {what} {path} failed: {cause}") from err


def failure_cause(err: BaseException, timeouts: dict[str, int] | None = None) -> str:
    """Why a remote read failed, in words, with the client's message: recognised from the
    XRootD status codes and errors (kXR_NotFound 3011, kXR_NotAuthorized 3010, connection
    errors, expired requests, unknown hosts). ``timeouts``: the XRootD settings in force,
    named when the server did not answer."""
    message = " ".join(str(err).split())
    if isinstance(err, FileNotFoundError) or "[3011]" in message:
        cause = "no such file on the server"
    elif isinstance(err, PermissionError) or "[3010]" in message:
        cause = "permission denied by the server (is a valid grid proxy, X509_USER_PROXY, set?)"
    elif "Invalid address" in message:
        cause = "the host name does not resolve"
    elif any(s in message for s in ("Connection error", "Socket error", "Operation expired")):
        cause = "the server did not answer; are the host and port right and reachable from here?"
        if timeouts:
            cause += (
                f" (XRootD time-outs: connection window {timeouts['ConnectionWindow']} s, "
                f"{timeouts['ConnectionRetry']} attempt(s), request {timeouts['RequestTimeout']} "
                "s; XRD_CONNECTIONWINDOW, XRD_CONNECTIONRETRY, XRD_REQUESTTIMEOUT change them)"
            )
    else:
        cause = "the transfer failed"
    return f"{cause} [{type(err).__name__}: {message}]"
