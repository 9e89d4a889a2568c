"""Remote inputs without a server: URL detection, the XRootD time-outs (the user's XRD_*
variables win), and failures translated into errors naming the sample, the URL and the cause.
The real-server checks are tests/workflow/test_xrootd.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from thetaflow.core.errors import ThetaflowError
from thetaflow.ingestion import remote
from thetaflow.ingestion.ingest import IngestError, reading
from thetaflow.ingestion.remote import (
    XROOTD_TIMEOUTS,
    RemoteFileError,
    failure_cause,
    is_remote,
    open_root,
    remote_errors,
)

URL = "root://xrootd.example.org:1094//store/mc/nano.root"
#: messages of fsspec-xrootd / the XRootD client (xrootd 6.2) for each failure
MISSING = (
    "Failed to open file: [ERROR] Server responded with an error: [3011] Unable to open "
    "/store/mc/nano.root; no such file or directory\n"
)
REFUSED = "Failed to open file: [FATAL] Connection error"
EXPIRED = "Failed to open file: [ERROR] Operation expired"
DENIED = "Failed to open file: [ERROR] Server responded with an error: [3010] Unable to open"
NO_HOST = "Failed to submit <bound method File.open> request: [FATAL] Invalid address"


@pytest.mark.parametrize(
    ("path", "remote_"),
    [
        (URL, True),
        ("https://example.org/nano.root", True),
        ("/data/nano.root", False),
        ("data/root:/nano.root", False),
    ],
)
def test_urls_are_remote_paths_are_not(path, remote_):
    assert is_remote(path) is remote_


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (OSError(MISSING), "no such file on the server"),
        (FileNotFoundError("nano.root"), "no such file on the server"),
        (OSError(DENIED), "permission denied by the server"),
        (OSError(NO_HOST), "the host name does not resolve"),
        (OSError(REFUSED), "the server did not answer"),
        (OSError(EXPIRED), "the server did not answer"),
        (OSError("Bytes failed to read from open file: [ERROR] checksum"), "the transfer failed"),
    ],
)
def test_failure_cause_recognises_the_xrootd_errors(error, cause):
    text = failure_cause(error)
    assert text.startswith(cause)
    # the client's own message follows, on one line
    assert " ".join(str(error).split()) in text and "\n" not in text


@pytest.fixture(autouse=True)
def no_xrootd_client_here(monkeypatch):
    """The XRootD client is loaded only in fresh processes (the last tests): loaded into a
    test worker that already holds TensorFlow, JAX and h5py, its import crashed the worker
    (a segmentation fault in the client's extension). In-process tests get its settings."""
    monkeypatch.setattr(remote, "configure_xrootd", lambda: dict(XROOTD_TIMEOUTS.settings()))


def in_fresh_process(code: str, env: dict | None = None) -> str:
    """Run ``code`` in a fresh interpreter; its last line of output."""
    run = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.strip().splitlines()[-1]


def test_a_server_that_did_not_answer_is_told_the_timeouts_in_force():
    text = failure_cause(OSError(REFUSED), XROOTD_TIMEOUTS.settings())
    assert "connection window 10 s, 2 attempt(s), request 300 s" in text
    assert "XRD_CONNECTIONWINDOW" in text


def test_remote_transfer_failure_names_sample_url_and_cause():
    with pytest.raises(RemoteFileError) as caught, remote_errors("dy", URL, "opening"):
        raise OSError(MISSING)
    assert str(caught.value).startswith(
        f"sample 'dy': opening {URL} failed: no such file on the server ["
    )
    assert isinstance(caught.value, ThetaflowError) and isinstance(caught.value.__cause__, OSError)


def test_local_paths_and_other_errors_pass_through_unchanged():
    with pytest.raises(FileNotFoundError), remote_errors("dy", "/data/nano.root", "opening"):
        raise FileNotFoundError("/data/nano.root")
    with pytest.raises(ValueError, match="not a ROOT file"), remote_errors("dy", URL, "opening"):
        raise ValueError("not a ROOT file")
    # a local file's errors stay the caller's to name (ingest: IngestError)
    with pytest.raises(FileNotFoundError):
        open_root("/no/such/dir/nano.root", "dy")


def test_missing_xrootd_packages_are_named(monkeypatch):
    monkeypatch.setattr(remote, "XROOTD_PACKAGES", {"no_such_module_xyz": "no-such-package"})
    with pytest.raises(RemoteFileError) as caught, remote_errors("dy", URL, "opening"):
        pytest.fail("the body must not run without the packages")
    assert str(caught.value).startswith(f"sample 'dy': opening {URL} needs the Python package(s)")
    assert "no-such-package" in str(caught.value)


def test_ingestion_names_a_remote_read_failure_by_its_cause():
    """ingest's ``reading`` (every chunk, the Runs tree): a failed transfer of a URL is a
    RemoteFileError saying why, a local file's failure still an IngestError."""
    answer = "reading entries 0-64 of .* did not answer"
    with pytest.raises(RemoteFileError, match=answer), reading("dy", URL, "entries 0-64"):
        raise OSError(EXPIRED)
    local = "/data/nano.root"
    with pytest.raises(IngestError, match="truncated or corrupt"), reading("dy", local, "x"):
        raise OSError("bad basket")


def test_unknown_host_fails_at_once_naming_the_url():
    url = "root://no-such-host.invalid//store/nano.root"
    code = (
        "from thetaflow.ingestion.ingest import open_tree\n"
        "try:\n"
        f"    open_tree({url!r}, 'Events', 'dy')\n"
        "except Exception as err:\n"
        "    print(type(err).__name__, str(err).replace('\\n', ' '))\n"
    )
    assert in_fresh_process(code).startswith(
        f"RemoteFileError sample 'dy': opening {url} failed: the host name does not resolve"
    )


def test_the_users_xrootd_variables_win_over_the_defaults():
    """The client keeps a setting its XRD_* variable made (read when it starts: a fresh
    process); the others get thetaflow's bounded defaults."""
    code = "import json; from thetaflow.ingestion.remote import configure_xrootd as c; "
    code += "print(json.dumps(c()))"
    in_force = json.loads(in_fresh_process(code, {"XRD_CONNECTIONWINDOW": "3"}))
    assert in_force == {"ConnectionWindow": 3, "ConnectionRetry": 2, "RequestTimeout": 300}
