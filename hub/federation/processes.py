"""Start and stop the federation's processes by PID, and prove none is left behind.

Each process starts in its own session (so signals to the starter do not reach it) and gets
SIGTERM if the starting process dies (Linux parent-death signal).
Stopping sends SIGTERM to each process we started, waits, kills what is left, then checks every
descendant seen before the stop (Flower's ``flower-superexec``, ``flwr-serverapp``...) by PID.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gsco_common.errors import FederationError
from gsco_common.processes import pid_alive

STOP_TIMEOUT_S = 15.0
KILL_GRACE_S = 10.0
"""After SIGKILL, how long a process may take to exit before it counts as surviving."""


def _die_with_parent() -> None:
    """In the child before exec: its own session, and SIGTERM when the parent dies (Linux)."""
    os.setsid()
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


@dataclass
class ManagedProcess:
    """A process we started: its name (for messages), Popen handle and log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        if not self.log_path.is_file():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def start_process(
    name: str, command: Sequence[str], env: Mapping[str, str], log_path: Path
) -> ManagedProcess:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        popen = subprocess.Popen(  # noqa: S603  (fixed command line, no shell)
            list(command),
            env=dict(env),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    return ManagedProcess(name, popen, log_path)


def wait_for_port(port: int, process: ManagedProcess, timeout: float = 60.0) -> None:
    """Return once ``127.0.0.1:port`` accepts connections; fail if the process exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise FederationError(
                f"{process.name} exited with code {process.popen.returncode} while starting",
                hint=f"its log ends with:\n{process.log_tail()}",
            )
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise FederationError(f"{process.name} did not open port {port} within {timeout:.0f} s")


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def descendants(pids: Iterable[int]) -> set[int]:
    """Every live descendant of ``pids`` (read from ``/proc``; empty where there is no ``/proc``)."""
    if not Path("/proc").is_dir():
        return set()
    children = _children_map()
    found: set[int] = set()
    stack = list(pids)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def wait_gone(pids: Iterable[int], timeout: float = STOP_TIMEOUT_S) -> None:
    """Wait until none of ``pids`` runs; SIGKILL stragglers; raise naming any that survive."""
    pids = list(pids)
    deadline = time.monotonic() + timeout
    while (left := [pid for pid in pids if pid_alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:
        _signal(pid, signal.SIGKILL)
    # A killed process still has to exit (free its memory): seconds for a large one on a busy machine.
    deadline = time.monotonic() + KILL_GRACE_S
    while (still := sorted(pid for pid in left if pid_alive(pid))) and time.monotonic() < deadline:
        time.sleep(0.2)
    if still:
        raise FederationError(f"processes still running after stop: {still}", hint="stop them by PID")


def stop_processes(processes: Sequence[ManagedProcess], timeout: float = STOP_TIMEOUT_S) -> list[int]:
    """Stop ``processes`` in order (SIGTERM, then SIGKILL after ``timeout``) and their descendants.

    Returns the PIDs that were checked; raises :class:`FederationError` naming any still alive.
    """
    tracked = {p.pid for p in processes} | descendants(p.pid for p in processes if p.alive())
    for process in processes:
        tracked |= descendants([process.pid])
        if process.alive():
            process.popen.terminate()
            try:
                process.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()
    wait_gone(tracked, timeout)
    return sorted(tracked)
