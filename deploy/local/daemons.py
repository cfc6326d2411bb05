"""Long-running processes that outlive the command that started them: pid file, log, health.

Each daemon starts in its own session (process group = its PID), with stdin closed and output
appended to ``logs/NAME.log``; its PID goes to ``run/NAME.pid``. Every process carries
``GSCO_TOPOLOGY_STATE=<state folder>`` in its environment, so a stop acts only on a PID that is
still ours (a PID the kernel has since given to another program is left alone). Stopping sends
SIGTERM to the process group, then checks the leader and every descendant seen before the stop
by PID (stragglers get SIGKILL), reusing the federation's PID checks.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from gsco_common.errors import FederationError, TopologyError
from gsco_common.processes import pid_alive
from hub.federation.processes import descendants, wait_gone

STATE_ENV = "GSCO_TOPOLOGY_STATE"
STOP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Daemon:
    """One service: how to start it and how to tell it is healthy."""

    name: str
    command: Sequence[str]
    env: Mapping[str, str]
    healthy: Callable[[], bool]


def http_ok(url: str) -> Callable[[], bool]:
    """Healthy when ``GET url`` answers 200."""

    def check() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    return check


def tls_ok(host: str, port: int, ca_file: Path) -> Callable[[], bool]:
    """Healthy when a TLS handshake on ``host:port`` verifies against ``ca_file`` (HTTP/2, as gRPC)."""

    def check() -> bool:
        context = ssl.create_default_context(cafile=str(ca_file))
        context.set_alpn_protocols(["h2"])
        try:
            with (
                socket.create_connection((host, port), timeout=2) as raw,
                context.wrap_socket(raw, server_hostname="localhost"),
            ):
                return True
        except (OSError, ssl.SSLError):
            return False

    return check


class DaemonSet:
    """The pid files and logs of one state folder."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.run_dir = state_dir / "run"
        self.log_dir = state_dir / "logs"

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def pid(self, name: str) -> int | None:
        """The PID of ``name`` when it runs and is ours, else None."""
        path = self.pid_file(name)
        if not path.is_file():
            return None
        pid = int(path.read_text().strip())
        return pid if pid_alive(pid) and self._ours(pid) else None

    def _spawned_alive(self, name: str) -> bool:
        """Whether the process this invocation spawned for ``name`` still runs.

        Not :meth:`pid`: between fork and exec a child still carries its parent's environment,
        without the state marker, and would read as "not ours" (a false "exited while starting").
        """
        path = self.pid_file(name)
        return path.is_file() and pid_alive(int(path.read_text().strip()))

    def _ours(self, pid: int) -> bool:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            return False
        return f"{STATE_ENV}={self.state_dir}".encode() in environ

    def spawn(self, daemon: Daemon) -> int:
        """Start ``daemon`` detached; returns its PID (not yet healthy)."""
        if self.pid(daemon.name) is not None:
            raise TopologyError(f"{daemon.name} is already running", hint="run `make down` first")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**daemon.env, STATE_ENV: str(self.state_dir)}
        with self.log_file(daemon.name).open("ab") as log:
            process = subprocess.Popen(  # noqa: S603  (fixed command line, no shell)
                list(daemon.command),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file(daemon.name).write_text(f"{process.pid}\n")
        return process.pid

    def wait_healthy(self, daemons: Sequence[Daemon], timeout_s: float) -> None:
        """Return when every daemon passes its health check; raise naming the first that fails."""
        waiting = list(daemons)
        deadline = time.monotonic() + timeout_s
        while waiting:
            for daemon in list(waiting):
                if not self._spawned_alive(daemon.name):
                    raise TopologyError(
                        f"{daemon.name} exited while starting",
                        hint=f"its log ends with:\n{self.tail(daemon.name)}",
                    )
                if daemon.healthy():
                    waiting.remove(daemon)
            if waiting and time.monotonic() > deadline:
                raise TopologyError(
                    f"{waiting[0].name} failed its health check for {timeout_s:.0f} s",
                    hint=f"see {self.log_file(waiting[0].name)}",
                )
            if waiting:
                time.sleep(0.5)

    def stop(self, name: str) -> list[int]:
        """Stop ``name`` and its descendants; returns the PIDs checked gone (empty: not running)."""
        pid = self.pid(name)
        self.pid_file(name).unlink(missing_ok=True)
        if pid is None:
            return []
        tracked = {pid} | descendants([pid])
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            wait_gone(tracked, STOP_TIMEOUT_S)
        except FederationError as exc:
            raise TopologyError(f"{name}: {exc.message}", hint="stop them by PID") from None
        return sorted(tracked)

    def names(self) -> list[str]:
        """Every daemon with a pid file."""
        return sorted(p.stem for p in self.run_dir.glob("*.pid")) if self.run_dir.is_dir() else []

    def tail(self, name: str, lines: int = 15) -> str:
        path = self.log_file(name)
        if not path.is_file():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
