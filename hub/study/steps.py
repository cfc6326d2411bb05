"""The real CLIs as subprocesses, one line per step; a failed step stops the study.

The hub does not import ``site_agent``: the study plays every role (site, central team, hub)
through the commands an operator types, in a fresh home with its own caches.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gsco_common.errors import StudyError
from gsco_common.telemetry import QUIET_FLOWER_ENV
from hub.federation.flwr_cli import venv_bin

STDERR_TAIL_LINES = 12
Announce = Callable[[str, float], None]


def study_env(work: Path) -> dict[str, str]:
    """The environment of every step: a fresh registry home and nothing outside ``work``.

    None of the operator's ``GSCO_*`` variables is passed on: one naming a registry, database,
    cache or site (``GSCO_TRACKING_URI``, ``GSCO_HUB_DB_URL``, ...) would let the study write
    outside its home, and repeats run at once would share it. Settings come from the study file.
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("GSCO_")}
    env.update(
        GSCO_HOME=str(work / "home" / "registry"),
        GSCO_KEY_PASSPHRASE=secrets.token_hex(16),
        XDG_CACHE_HOME=str(work / "home" / "cache"),
        XDG_CONFIG_HOME=str(work / "home" / "config"),
        TMPDIR=str(work / "home" / "tmp"),
        MLFLOW_DISABLE_TELEMETRY="true",
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        **QUIET_FLOWER_ENV,
    )
    (work / "home" / "tmp").mkdir(parents=True, exist_ok=True)
    return env


class Stopped(Exception):
    """A step not started because ``stop`` was set: not a failure of its own (another repeat's is)."""


@dataclass
class Steps:
    """Runs commands in order, logs each one's output under ``log_dir`` and times it.

    ``stop``: once set (another repeat of the study failed), no further step starts (:class:`Stopped`).
    """

    env: dict[str, str]
    log_dir: Path
    announce: Announce
    timings: dict[str, float] = field(default_factory=dict)
    stop: threading.Event | None = None

    def run(self, title: str, command: str, *args: str, timeout: float = 3600) -> str:
        """Run ``command args``; its stdout, or :class:`StudyError` with the exit code and stderr tail."""
        if self.stop is not None and self.stop.is_set():
            raise Stopped(f"step '{title}' not started: another repeat of the study failed")
        argv = [venv_bin(command), *args]
        started = time.monotonic()
        try:
            done = subprocess.run(  # noqa: S603  (fixed argument list, no shell)
                argv, capture_output=True, text=True, env=self.env, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise StudyError(
                f"step '{title}' timed out after {timeout:.0f} s: {shlex.join([command, *args])}"
            ) from None
        elapsed = time.monotonic() - started
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{len(self.timings) + 1:02d}-{command}-{args[0] if args else ''}.log"
        log.write_text(
            f"$ {shlex.join([command, *args])}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-STDERR_TAIL_LINES:]) or "(no output on stderr)"
            raise StudyError(
                f"step '{title}' failed: `{shlex.join([command, *args])}` exited with code {done.returncode}",
                hint=f"its stderr ends with:\n{tail}\n(its whole output: {log})",
            )
        self.timings[title] = round(elapsed, 1)
        self.announce(title, elapsed)
        return done.stdout

    def run_json(self, title: str, command: str, *args: str) -> Any:
        """Run a command given ``--json``; its parsed output."""
        out = self.run(title, command, *args, "--json")
        try:
            return json.loads(out)
        except json.JSONDecodeError:
            raise StudyError(f"step '{title}' printed no JSON: {shlex.join([command, *args])}") from None
