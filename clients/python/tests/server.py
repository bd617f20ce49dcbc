"""The real tickwire-server for the tests: started on 127.0.0.1 port 0 with PORT_FILE (the
environment tests/support/server_process.cc gives the C++ tests), stopped by PID."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Callable, Optional

USER = "test"
PASSWORD = "secret"

_REPO = Path(__file__).resolve().parents[3]


def server_binary() -> str:
    """TICKWIRE_SERVER_BIN, else the release build of this tree."""
    path = os.environ.get("TICKWIRE_SERVER_BIN") or str(
        _REPO / "build/release/apps/server/tickwire-server"
    )
    if not os.access(path, os.X_OK):
        raise RuntimeError(
            f"no tickwire-server at {path}: build it (cmake --build --preset release) or set "
            "TICKWIRE_SERVER_BIN"
        )
    return path


def _die_with_parent() -> list:
    """A command prefix that makes the server die with the thread that starts it, so that no
    server outlives a test run that is killed (ctest timeout, Ctrl-C). setpriv (util-linux)
    sets the signal and execs the server: subprocess's preexec_fn could do the same but runs
    Python between fork and exec, which can deadlock when other threads exist."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.005) -> bool:
    """Polls `predicate` until it is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class ServerProcess:
    """One tickwire-server child. `env` overrides (a None value removes a variable)."""

    def __init__(self, workdir: Path, env: Optional[dict] = None, metrics: bool = False):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.overrides = dict(env or {})
        self.metrics = metrics
        self.port = 0
        self.metrics_port = 0
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0

    def _env(self, listen: str) -> dict:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "STREAM_USER": USER,
            "STREAM_PASS": PASSWORD,
            "LISTEN_ADDR": listen,
            "PORT_FILE": str(self.workdir / "port"),
            "WORKERS": "2",
            "METRICS_ADDR": "127.0.0.1:0" if self.metrics else "",
            "METRICS_PORT_FILE": str(self.workdir / "metrics_port"),
            # Tests stop servers often: drain at once unless a test sets a period.
            "DRAIN_PERIOD": "0s",
        }
        for name in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", "LSAN_OPTIONS"):
            if name in os.environ:
                env[name] = os.environ[name]
        for name, value in self.overrides.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = str(value)
        return env

    def start(self, timeout: float = 10.0) -> "ServerProcess":
        """Starts the server (on port 0 the first time, on the same port after a stop) and
        waits until it listens."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        port_file = self.workdir / "port"
        port_file.unlink(missing_ok=True)
        (self.workdir / "metrics_port").unlink(missing_ok=True)
        listen = f"127.0.0.1:{self.port}"
        self.starts += 1
        log = open(self.workdir / f"server-{self.starts}.log", "wb")
        self.proc = subprocess.Popen(
            _die_with_parent() + [server_binary()],
            env=self._env(listen),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

        def ready() -> bool:
            if self.proc.poll() is not None:
                return True
            text = port_file.read_text() if port_file.exists() else ""
            return text.endswith("\n")

        wait_until(ready, timeout)
        if self.proc.poll() is not None or not port_file.exists():
            raise RuntimeError(f"tickwire-server did not start: {self.log_tail()}")
        self.port = int(port_file.read_text().strip())
        metrics_file = self.workdir / "metrics_port"
        self.metrics_port = int(metrics_file.read_text().strip()) if metrics_file.exists() else 0
        return self

    def ready(self) -> bool:
        """/readyz answers 200 (needs metrics=True: METRICS_ADDR on a port of its own)."""
        assert self.metrics_port, "started without metrics"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/readyz",
                                        timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float = 15.0) -> "ServerProcess":
        if not wait_until(self.ready, timeout, interval=0.02):
            raise RuntimeError(f"tickwire-server not ready within {timeout} s: {self.log_tail()}")
        return self

    def log_tail(self, lines: int = 10) -> str:
        path = self.workdir / f"server-{self.starts}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> Optional[int]:
        """Sends `sig` and waits for the exit (SIGKILL after `timeout`); the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL)
