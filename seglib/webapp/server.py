"""Running the app under gunicorn on loopback, as the tests, the serving benchmark and chapter 13 do:
:func:`gunicorn_server` starts ``gunicorn app:app`` on a port the system picks and yields once ``/health`` answers;
on Linux the server also dies with the process that started it (``prctl(PR_SET_PDEATHSIG)``). Each server gets
its own gunicorn control socket beside its log in the temporary folder (``--control-socket``, gunicorn 25.1 and
later): by default every gunicorn master binds ``$XDG_RUNTIME_DIR/gunicorn.ctl`` or ``~/.gunicorn/gunicorn.ctl``
(creating ``~/.gunicorn/``), so servers started together would replace each other's socket and the first to stop
would delete the others'. The served app never imports this module."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from seglib import lifetime
from seglib.webapp.settings import GUNICORN_THREADS, GUNICORN_WORKERS

__all__ = ["GunicornServer", "gunicorn_server", "free_port", "stop_server"]


@dataclass
class GunicornServer:
    """A running ``gunicorn`` started by :func:`gunicorn_server`."""

    url: str
    command: list[str]
    process: subprocess.Popen
    log_path: Path
    #: this server's own control socket (``gunicornc -s PATH``), removed when the server stops
    control_socket: Path | None = None

    def log_tail(self, characters: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-characters:]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (another program may take it before you do)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


#: gunicorn's line naming the address it bound, here the port the system chose for ``--bind 127.0.0.1:0``.
_LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+) ")
def _wait_for_port(process: subprocess.Popen, log_path: Path, deadline: float) -> int:
    """The port gunicorn reports in its log once it has bound its socket."""
    while time.monotonic() < deadline:
        found = _LISTENING.search(log_path.read_text(errors="replace"))
        if found:
            return int(found.group(1))
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)
    raise TimeoutError(f"gunicorn did not report its address in time:\n{log_path.read_text()[-3000:]}")


def _wait_until_healthy(server: GunicornServer, deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=max(1.0, deadline - time.monotonic())):
                return
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"gunicorn is up but not healthy ({error.code}): {error.read()[:500]!r}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise TimeoutError(f"gunicorn did not answer /health in time:\n{server.log_tail()}")


def stop_server(process: subprocess.Popen) -> None:
    """Stop a server started with ``start_new_session=True``: SIGTERM, then SIGKILL to its group after 30 s."""
    if process.poll() is None:
        process.terminate()  # gunicorn's graceful shutdown stops its workers too
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: only what this call started
            process.wait()


@contextlib.contextmanager
def gunicorn_server(app: str = "app:app", cwd: str | os.PathLike | None = None, env: Mapping[str, str] | None = None,
                    workers: int = GUNICORN_WORKERS, threads: int = GUNICORN_THREADS,
                    ready_timeout: float = 180.0) -> Iterator[GunicornServer]:
    """Run ``gunicorn app:app`` (from ``cwd``) bound to 127.0.0.1 on a port the system picks, with ``env`` added to
    the environment; yields once ``/health`` answers 200 and stops the server (and its workers) on exit.

    ``workers`` and ``threads`` go on gunicorn's command line, so they hold whatever ``cwd`` holds (the
    repository's ``gunicorn.conf.py`` has the same defaults); so does the server's own control socket
    (:attr:`GunicornServer.control_socket`). The port is read from gunicorn's log, so no other program can take it
    between choosing and binding. The log is deleted when the server stops cleanly; if it fails to start or exits
    with an error, the log is kept and its path printed. On Linux the server also gets SIGTERM if this process dies
    without stopping it.
    """
    executable = Path(sys.executable).with_name("gunicorn")
    launcher = [str(executable)] if executable.is_file() else [sys.executable, "-m", "gunicorn"]
    handle, name = tempfile.mkstemp(prefix="gunicorn-", suffix=".log")
    log_path = Path(name)
    # beside the log, under its unique name: gunicorn removes the socket when it stops (on SIGTERM too), so nothing
    # is left behind even when the process that started it is killed
    control_socket = log_path.with_suffix(".ctl")
    command = [*launcher, "--bind", "127.0.0.1:0", "--timeout", "600", "--workers", str(workers),
               "--threads", str(threads), "--control-socket", str(control_socket), app]
    with os.fdopen(handle, "wb") as log:
        process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **(env or {})}, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=lifetime.death_signal())
    started = False
    try:
        deadline = time.monotonic() + ready_timeout
        server = GunicornServer(f"http://127.0.0.1:{_wait_for_port(process, log_path, deadline)}", command, process,
                                log_path, control_socket)
        _wait_until_healthy(server, deadline)
        started = True
        yield server
    finally:
        stop_server(process)
        control_socket.unlink(missing_ok=True)  # gone already, unless gunicorn had to be killed
        if started and process.returncode == 0:
            log_path.unlink(missing_ok=True)
        else:
            print(f"gunicorn's log is kept at {log_path}", file=sys.stderr)
