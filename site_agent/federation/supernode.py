"""``site-agent join``: run the site's Flower SuperNode and its task gate until stopped.

The SuperNode (Flower's ``flower-supernode``) connects out to the hub's SuperLink, over TLS with
the site's SuperNode key by default. It runs with ``--isolation process``: it never starts app
code; the task gate (:mod:`.gate`) in this process does, after the approval check. The node
config carries only ``site-dir``: the ClientApp reads data through ``site.yaml``.

Flower's state for the site lives in ``SITE_DIR/federation/flwr`` (``FLWR_HOME``), telemetry and
update checks are off, and the SuperNode dies with this process (Linux parent-death signal), so
stopping ``join`` in any way leaves no Flower process behind.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from gsco_common.errors import ConfigError, FederationError, KeyMaterialError
from gsco_common.net import free_port
from gsco_common.telemetry import QUIET_FLOWER_ENV
from site_agent.federation.approval import FEDERATION_DIR, ApprovalStore
from site_agent.federation.gate import TaskGate
from site_agent.federation.node_keys import node_key_paths

log = logging.getLogger(__name__)

SUPERNODE_EXIT_HINTS = {
    302: "the SuperNode key could not be read; recreate it with `site-agent federation keys`",
    303: "SuperNode authentication needs TLS: drop --insecure and pass the hub's CA certificate",
    305: "the SuperLink refused or could not be reached: check the address, the CA certificate, and "
    "that the hub registered this site's keys/supernode_key.pub",
}
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class JoinOptions:
    """How one site joins a federation."""

    site_dir: Path
    superlink: str
    insecure: bool = False
    root_certificates: Path | None = None
    runtime_port: int | None = None


def flower_home(site_dir: Path) -> Path:
    return site_dir / FEDERATION_DIR / "flwr"


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies (Linux ``PR_SET_PDEATHSIG``)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def _secret_file(site_dir: Path) -> Path:
    """A random shared secret so only this site's gate may take tasks from its SuperNode."""
    path = site_dir / FEDERATION_DIR / "superexec.secret"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(32))
    return path


def supernode_command(options: JoinOptions, runtime_port: int, secret_file: Path) -> list[str]:
    """The ``flower-supernode`` command line for this site."""
    site_dir = options.site_dir.resolve()
    command = [
        str(Path(sys.executable).parent / "flower-supernode"),
        "--superlink",
        options.superlink,
        "--isolation",
        "process",
        "--port",
        str(runtime_port),
        "--node-config",
        f"site-dir={json.dumps(str(site_dir))}",
        "--superexec-auth-secret-file",
        str(secret_file),
        "--max-wait-time",
        "120",
    ]
    if options.insecure:
        return [*command, "--insecure"]
    if options.root_certificates is None or not options.root_certificates.is_file():
        raise ConfigError(
            "TLS needs the hub's CA certificate",
            hint="pass --root-certificates CA.pem (from `gsco-hub federation certs`); --insecure on loopback",
        )
    private_key, _ = node_key_paths(site_dir)
    if not private_key.is_file():
        raise KeyMaterialError(
            "this site has no SuperNode key",
            hint="run `site-agent federation keys SITE_DIR` and send the .pub to the hub",
        )
    return [
        *command,
        "--root-certificates",
        str(options.root_certificates.resolve()),
        "--auth-supernode-private-key",
        str(private_key),
    ]


def join(options: JoinOptions, stop: threading.Event | None = None) -> None:
    """Run the SuperNode and the task gate until ``stop`` is set, SIGTERM/SIGINT, or the node exits.

    Raises:
        FederationError: the SuperNode exited by itself (refused key, unreachable SuperLink...).
    """
    stop = stop or threading.Event()
    site_dir = options.site_dir.resolve()
    home = flower_home(site_dir)
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update({"FLWR_HOME": str(home), **QUIET_FLOWER_ENV})
    runtime_port = options.runtime_port or free_port()
    secret_file = _secret_file(site_dir)
    command = supernode_command(options, runtime_port, secret_file)
    log_path = site_dir / FEDERATION_DIR / "supernode.log"
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    with log_path.open("ab") as node_log:
        node = subprocess.Popen(  # noqa: S603  (fixed command line, no shell)
            command,
            env=dict(os.environ),
            stdout=node_log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    log.info("SuperNode started (pid %d), connecting to %s", node.pid, options.superlink)
    gate = TaskGate(
        f"127.0.0.1:{runtime_port}", ApprovalStore(site_dir), auth_secret=secret_file.read_bytes()
    )
    gate_thread = threading.Thread(target=gate.serve, args=(stop,), name="task-gate", daemon=True)
    try:
        if _wait_for_port(runtime_port, node, stop):
            gate_thread.start()
        while not stop.is_set() and node.poll() is None and gate_thread.is_alive():
            stop.wait(0.2)
    finally:
        node_exited = node.poll() is not None
        gate_died = gate_thread.ident is not None and not gate_thread.is_alive()
        stop.set()
        stop_process(node)
        if gate_thread.ident is not None:
            gate_thread.join(timeout=STOP_TIMEOUT_S)
    if node_exited:
        code = flower_exit_code(log_path)
        hint = SUPERNODE_EXIT_HINTS.get(code or 0, "see SITE_DIR/federation/supernode.log")
        raise FederationError(f"the SuperNode exited (Flower exit code {code or node.returncode})", hint=hint)
    if gate_died:
        raise FederationError("the task gate stopped unexpectedly", hint="see the messages above")


def _wait_for_port(port: int, node: subprocess.Popen[bytes], stop: threading.Event) -> bool:
    """Wait until the SuperNode's local Runtime API accepts connections; False if it exited first."""
    while not stop.is_set() and node.poll() is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        stop.wait(0.2)
    return False


def flower_exit_code(log_path: Path) -> int | None:
    """The exit code Flower reported last in the SuperNode's log (its process exit status may differ)."""
    if not log_path.is_file():
        return None
    found = re.findall(r"Exit Code: (\d+)", log_path.read_text(errors="replace")[-20_000:])
    return int(found[-1]) if found else None


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, wait, then SIGKILL: by PID, never by name."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
