"""A whole federation on one machine: a real SuperLink and N SuperNodes as processes on loopback.

:class:`LocalFederation` plays every role with the real commands: it prepares each site the way
hospital IT would (``site-agent init``, ``site-agent federation approve``, and for TLS
``site-agent federation keys`` plus the hub's registration), starts the SuperLink and one
``site-agent join`` per site, runs the federation, publishes the bundle, and on exit stops every
process it started and checks by PID that none (nor any of their children) is left.
The federation demo (``python -m deploy.demo.federation``), the integration tests and the benchmark
all use it. It lives in ``deploy/`` because it plays the sites as well as the hub: the hub's own
code never starts sites.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from gsco_common.errors import FederationError, RegistryError
from gsco_common.keys import load_public_key, public_pem
from gsco_common.net import free_port
from hub.federation.certs import CertPaths, create_certificates
from hub.federation.flwr_cli import FlowerCli, flower_env, venv_bin
from hub.federation.orchestrate import EventHandler, RunOutcome, app_dir, new_run_name, run_federation
from hub.federation.partition import write_site_slices
from hub.federation.processes import (
    ManagedProcess,
    descendants,
    start_process,
    stop_processes,
    wait_gone,
)
from hub.federation.publish import FederatedBundle, create_federation_key, federation_key_paths, publish_run
from hub.federation.settings import RunSettings
from hub.federation.superlink import SuperLinkConfig, start_superlink
from registry.config import RegistryConfig
from registry.service import Registry

FEDERATION_SITE = "hub-federation"
"""Name under which the hub's federation signing key is enrolled in the registry."""


@dataclass(frozen=True)
class DemoTask:
    """The task every demo site trains."""

    task_id: str = "pneumonia"
    labels: tuple[str, ...] = ("normal", "pneumonia")
    modality: str = "paediatric chest X-ray"


@dataclass
class LocalSite:
    """One demo site: its folder, SuperNode process (when joined) and whether it approved the app."""

    name: str
    site_dir: Path
    process: ManagedProcess | None = None


def _site_agent(*args: str, env: dict[str, str] | None = None) -> str:
    """Run a ``site-agent`` command as hospital IT would; raise with its own error line on failure."""
    done = subprocess.run(  # noqa: S603  (fixed command line, no shell)
        [venv_bin("site-agent"), *args], capture_output=True, text=True, env=env, check=False, timeout=300
    )
    if done.returncode != 0:
        message = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise FederationError(f"`site-agent {args[0]}` failed: {message}")
    return done.stdout


@dataclass
class LocalFederation:
    """SuperLink, sites and registry of a one-machine federation under ``workdir``."""

    workdir: Path
    registry: RegistryConfig
    tls: bool = False
    task: DemoTask = field(default_factory=DemoTask)
    superlink: SuperLinkConfig | None = None
    sites: list[LocalSite] = field(default_factory=list)
    processes: list[ManagedProcess] = field(default_factory=list)
    stopped_pids: list[int] = field(default_factory=list)

    def __enter__(self) -> LocalFederation:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- setup ---------------------------------------------------------------------------------

    @property
    def certs(self) -> CertPaths:
        return CertPaths.in_dir(self.workdir / "certs")

    def prepare_registry(self) -> None:
        """Initialise the registry, create the task and enrol the hub's federation key."""
        registry, _ = Registry.init(self.registry)
        with registry:
            if self.task.task_id not in {task.task_id for task in registry.tasks()}:
                registry.create_task(self.task.task_id, list(self.task.labels), self.task.modality)
            private, public = federation_key_paths(self.registry.home)
            if not private.is_file():
                create_federation_key(self.registry.home)
            enrolled = {site.name for site in registry.sites()}
            if FEDERATION_SITE not in enrolled:
                registry.enroll_site(FEDERATION_SITE, public_pem(load_public_key(public)))

    def start_superlink(self) -> SuperLinkConfig:
        if self.tls and not self.certs.server_cert.is_file():
            create_certificates(self.certs.ca_cert.parent)
        self.superlink = SuperLinkConfig(
            home=self.workdir / "hub",
            port=free_port(),
            insecure=not self.tls,
            certs_dir=self.certs.ca_cert.parent if self.tls else None,
            in_memory=True,
        )
        self.processes.append(start_superlink(self.superlink, self.workdir / "logs" / "superlink.log"))
        return self.superlink

    @property
    def flwr(self) -> FlowerCli:
        if self.superlink is None:
            raise FederationError("the SuperLink is not running")
        return self.superlink.flwr()

    def add_site(
        self,
        name: str,
        data: Path,
        *,
        approve: bool = True,
        register: bool = True,
        data_options: dict[str, Any] | None = None,
    ) -> LocalSite:
        """Create a site folder for ``data`` (init, data block, approval, SuperNode key if TLS).

        ``data_options`` are extra keys of the site's ``data:`` block (e.g. ``val_fraction``).
        """
        site_dir = self.workdir / "sites" / name
        _site_agent(
            "init",
            str(site_dir),
            "--name",
            name,
            "--task",
            self.task.task_id,
            "--labels",
            ",".join(self.task.labels),
            "--modality",
            self.task.modality,
        )
        config_path = site_dir / "site.yaml"
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        config["data"] = {"path": str(data.resolve()), **(data_options or {})}
        config["training"]["num_threads"] = 1
        config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        if approve:
            _site_agent("federation", "approve", str(app_dir()), "--site", str(site_dir))
        if self.tls:
            _site_agent("federation", "keys", str(site_dir))
            (site_dir / "federation").mkdir(exist_ok=True)
            (site_dir / "federation" / "ca.pem").write_bytes(self.certs.ca_cert.read_bytes())
            if register:
                self.flwr.register_node(site_dir / "keys" / "supernode_key.pub")
        site = LocalSite(name, site_dir)
        self.sites.append(site)
        return site

    def join(self, site: LocalSite) -> ManagedProcess:
        """Start ``site-agent join`` for ``site`` against the running SuperLink."""
        if self.superlink is None:
            raise FederationError("start the SuperLink first")
        command = [
            venv_bin("site-agent"),
            "join",
            "--site",
            str(site.site_dir),
            "--superlink",
            self.superlink.address,
        ]
        if not self.tls:
            command.append("--insecure")
        env = flower_env(site.site_dir / "federation" / "flwr")
        site.process = start_process(
            f"site {site.name}", command, env, self.workdir / "logs" / f"{site.name}.log"
        )
        self.processes.insert(0, site.process)
        return site.process

    def wait_for_sites(self, count: int, timeout: float = 120.0) -> None:
        """Return once ``count`` SuperNodes are online; fail early if a site's process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for site in self.sites:
                if site.process is not None and not site.process.alive():
                    raise FederationError(
                        f"site {site.name} stopped while joining (exit code {site.process.popen.returncode})",
                        hint=f"its log ends with:\n{site.process.log_tail()}",
                    )
            online = [node for node in self.flwr.nodes() if node.get("status") == "online"]
            if len(online) >= count:
                return
            time.sleep(1.0)
        raise FederationError(f"fewer than {count} sites came online within {timeout:.0f} s")

    def crash_site(self, site: LocalSite) -> list[int]:
        """SIGKILL a site's ``join`` process, as if the site agent crashed; return the PIDs that went.

        Its SuperNode gets the parent-death signal and signs off from the SuperLink, so the hub
        learns at once (a machine that vanishes entirely is noticed after Flower's heartbeat
        timeout, about a minute, or the round timeout).
        """
        if site.process is None:
            return []
        pids = [site.process.pid, *descendants([site.process.pid])]
        site.process.popen.kill()
        site.process.popen.wait()
        self.processes.remove(site.process)
        wait_gone(pids)
        return pids

    # --- run -----------------------------------------------------------------------------------

    def run(
        self, settings: RunSettings, name: str, on_event: EventHandler, *, app: Path | None = None
    ) -> RunOutcome:
        settings = settings.model_copy(update={"out_dir": str(self.workdir / "runs" / name)})
        return run_federation(self.flwr, settings, name, on_event, app=app)

    def publish(self, outcome: RunOutcome) -> FederatedBundle:
        return publish_run(outcome, self.registry)

    def stop(self) -> list[int]:
        """Stop sites, then the SuperLink; verify by PID that nothing is left running."""
        processes, self.processes = self.processes, []
        self.stopped_pids = stop_processes(processes)
        return self.stopped_pids


def demo_site_data(data: Path, workdir: Path, sites: int, limit: int | None, seed: int = 0) -> Sequence[Path]:
    """Non-IID slices of ``data`` for ``sites`` sites (see :mod:`hub.federation.partition`)."""
    return write_site_slices(data, workdir / "data", sites, seed=seed, limit=limit)


def run_demo(
    data: Path,
    workdir: Path,
    registry: RegistryConfig,
    settings: RunSettings,
    sites: int,
    on_event: EventHandler,
    *,
    task: DemoTask | None = None,
    tls: bool = False,
    limit: int | None = None,
) -> dict[str, Any]:
    """The whole demo; returns what happened (run result, published bundle, PIDs checked)."""
    if os.environ.get("GSCO_KEY_PASSPHRASE") is None:
        raise FederationError(
            "the demo creates signing keys without prompting", hint="set GSCO_KEY_PASSPHRASE first"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    if (workdir / "sites").exists():
        raise RegistryError(
            "the demo folder already holds sites from an earlier demo", hint="pass an empty --workdir"
        )
    slices = demo_site_data(data, workdir, sites, limit)
    with LocalFederation(workdir, registry, tls=tls, task=task or DemoTask()) as federation:
        on_event({"event": "demo", "step": "registry"})
        federation.prepare_registry()
        on_event({"event": "demo", "step": "superlink"})
        federation.start_superlink()
        for index, path in enumerate(slices, start=1):
            on_event({"event": "demo", "step": f"site {index}"})
            federation.join(federation.add_site(f"site-{index}", path))
        federation.wait_for_sites(sites)
        outcome = federation.run(settings, new_run_name(), on_event)
        on_event({"event": "demo", "step": "publishing"})
        bundle = federation.publish(outcome)
    return {
        "run": outcome.name,
        "result": outcome.result,
        "bundle": bundle.to_dict(),
        "stopped_pids": federation.stopped_pids,
    }
