"""``gsco-hub federation ...``: certificates, the signing key, the SuperLink, site registration and runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from gsco_common.cli import JsonFlag, console, handle_errors, print_json
from hub.cli.federation_options import (
    BackboneOption,
    CaOption,
    ImageSizeOption,
    InsecureOption,
    RoundsOption,
    StrategyOption,
    SuperLinkOption,
    run_settings,
)
from hub.cli.run_progress import ProgressPrinter, sigterm_as_interrupt
from hub.federation.certs import create_certificates
from hub.federation.flwr_cli import FlowerCli
from hub.federation.orchestrate import new_run_name, run_federation
from hub.federation.processes import stop_processes
from hub.federation.publish import create_federation_key, federation_key_paths, publish_run
from hub.federation.settings import LrSchedule
from hub.federation.superlink import SuperLinkConfig, start_superlink
from registry.config import RegistryConfig

federation_app = typer.Typer(
    name="federation",
    help="Federated specialist training with Flower: the hub's SuperLink and runs.",
    no_args_is_help=True,
)

DEFAULT_SUPERLINK = "127.0.0.1:9092"


def _registry(ctx: typer.Context) -> RegistryConfig:
    """The registry chosen by `gsco-hub`'s global options (GSCO_HOME / ~/.gsco by default)."""
    chosen = getattr(ctx.find_root().obj, "registry", None)
    return chosen if isinstance(chosen, RegistryConfig) else RegistryConfig.resolve()


def _flwr(registry: RegistryConfig, superlink: str, insecure: bool, ca: Path | None) -> FlowerCli:
    state = registry.home / "federation"
    return FlowerCli(
        state / "flwr", superlink, insecure=insecure, root_certificates=ca or state / "certs" / "ca.pem"
    )


@federation_app.command("certs")
@handle_errors
def certs(
    out_dir: Path = typer.Argument(..., help="Folder for ca.pem, ca.key, server.pem, server.key."),
    host: list[str] = typer.Option([], "--host", help="Host name or address sites use for the hub (repeat)."),
    json_output: JsonFlag = False,
) -> None:
    """Create a private CA and the SuperLink's TLS certificate (localhost, 127.0.0.1 and --host names).

    Give ca.pem to every site; keep ca.key offline.
    """
    paths = create_certificates(out_dir, host)
    files = {
        "ca": str(paths.ca_cert),
        "server_cert": str(paths.server_cert),
        "server_key": str(paths.server_key),
    }
    if json_output:
        print_json(files)
        return
    console.print(f"CA certificate for the sites: {paths.ca_cert}", highlight=False, soft_wrap=True)
    console.print(f"SuperLink certificate and key: {paths.server_cert}, {paths.server_key}", highlight=False)


@federation_app.command("key")
@handle_errors
def key(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """Create the hub's federation signing key (HOME/keys/federation.key), used to sign federated bundles.

    The central team enrols federation.pub in the registry like a site key.
    """
    registry = _registry(ctx)
    found = create_federation_key(registry.home)
    public = federation_key_paths(registry.home)[1]
    if json_output:
        print_json({"public_key": str(public), "fingerprint": found})
        return
    console.print(f"federation key written; enrol {public} in the registry", highlight=False, soft_wrap=True)
    console.print(f"fingerprint: {found}", highlight=False)


@federation_app.command("superlink")
@handle_errors
def superlink(
    ctx: typer.Context,
    insecure: bool = typer.Option(
        False, "--insecure", help="No TLS, no SuperNode auth (loopback tests only)."
    ),
    certs_dir: Path | None = typer.Option(None, "--certs", help="Folder from `federation certs`."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 for all)."),
    port: int = typer.Option(9092, "--port", help="The one port for sites, `flwr` and the ServerApp."),
    in_memory: bool = typer.Option(
        False, "--in-memory", help="Keep no state on disk (faster; forgets nodes)."
    ),
) -> None:
    """Run the Flower SuperLink in the foreground until Ctrl-C (TLS and SuperNode auth by default)."""
    registry = _registry(ctx)
    state = registry.home / "federation"
    config = SuperLinkConfig(
        home=state,
        host=host,
        port=port,
        insecure=insecure,
        certs_dir=None if insecure else (certs_dir or state / "certs"),
        in_memory=in_memory,
    )
    sigterm_as_interrupt()
    process = start_superlink(config, state / "logs" / "superlink.log")
    mode = "INSECURE (no TLS, no node auth)" if insecure else "TLS + SuperNode authentication"
    console.print(f"SuperLink listening on {host}:{port}, {mode}; log: {process.log_path}", highlight=False)
    try:
        process.popen.wait()
    except KeyboardInterrupt:
        console.print("stopping the SuperLink", highlight=False)
    finally:
        stop_processes([process])


@federation_app.command("register")
@handle_errors
def register(
    ctx: typer.Context,
    public_key: Path = typer.Argument(..., help="A site's keys/supernode_key.pub."),
    superlink_address: SuperLinkOption = DEFAULT_SUPERLINK,
    insecure: InsecureOption = False,
    root_certificates: CaOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Allow a site's SuperNode key to connect (SuperNode authentication)."""
    node_id = _flwr(_registry(ctx), superlink_address, insecure, root_certificates).register_node(public_key)
    if json_output:
        print_json({"node_id": node_id})
        return
    console.print(f"registered SuperNode {node_id}", highlight=False)


@federation_app.command("run")
@handle_errors
def run(
    ctx: typer.Context,
    task: str = typer.Option(..., "--task", help="Task id (as in the registry and the sites' site.yaml)."),
    backbone: BackboneOption = "resnet18",
    rounds: RoundsOption = 3,
    strategy: StrategyOption = "fedavg",
    proximal_mu: float = typer.Option(0.01, "--proximal-mu", help="FedProx proximal term weight."),
    min_sites: int = typer.Option(2, "--min-sites", min=1, help="Fewer sites than this stops the run."),
    image_size: ImageSizeOption = 64,
    local_epochs: int = typer.Option(1, "--local-epochs", min=1, help="Epochs each site trains per round."),
    lr: float = typer.Option(1e-3, "--lr", help="Sites' learning rate in the first round."),
    lr_schedule: LrSchedule = typer.Option(
        "cosine", "--lr-schedule", help="cosine (decay over the rounds) or constant."
    ),
    batch_size: int = typer.Option(32, "--batch-size", help="Sites' batch size."),
    round_timeout: float = typer.Option(1800.0, "--round-timeout", help="Seconds a site may take per round."),
    dp_noise_multiplier: float = typer.Option(
        0.0, "--dp-noise-multiplier", help="DP: Gaussian noise multiplier."
    ),
    dp_clipping_norm: float = typer.Option(0.0, "--dp-clipping-norm", help="DP: update clipping norm."),
    dp_delta: float = typer.Option(1e-5, "--dp-delta", help="DP: delta of the reported (epsilon, delta)."),
    dp_model: bool = typer.Option(
        False,
        "--dp-model",
        help="Build the model with GroupNorm in place of BatchNorm, as sites training with DP-SGD need.",
    ),
    name: str | None = typer.Option(None, "--name", help="Run name (default: run-<random>)."),
    publish: bool = typer.Option(True, "--publish/--no-publish", help="Publish the final bundle."),
    superlink_address: SuperLinkOption = DEFAULT_SUPERLINK,
    insecure: InsecureOption = False,
    root_certificates: CaOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Run a federated training to the end, then export, sign and publish it as source federation-<run>.

    The exit code reflects the run's real final status (read back from the SuperLink).
    """
    registry = _registry(ctx)
    run_name = name or new_run_name()
    settings = run_settings(
        task,
        backbone,
        image_size,
        rounds,
        strategy,
        proximal_mu=proximal_mu,
        min_sites=min_sites,
        local_epochs=local_epochs,
        lr=lr,
        lr_schedule=lr_schedule,
        batch_size=batch_size,
        round_timeout=round_timeout,
        dp_noise_multiplier=dp_noise_multiplier,
        dp_clipping_norm=dp_clipping_norm,
        dp_delta=dp_delta,
        dp_model=dp_model,
        out_dir=str(registry.home / "federation" / "runs" / run_name),
    )
    flwr = _flwr(registry, superlink_address, insecure, root_certificates)
    sigterm_as_interrupt()
    with ProgressPrinter(rounds, json_output) as printer:
        outcome = run_federation(flwr, settings, run_name, printer)
    report: dict[str, Any] = {"run": run_name, "out_dir": str(outcome.out_dir), "result": outcome.result}
    if publish:
        report["bundle"] = publish_run(outcome, registry).to_dict()
    if json_output:
        print_json(report)
        return
    if publish:
        bundle = report["bundle"]
        console.print(
            f"published {bundle['name']} version {bundle['version']} ({bundle['status']})", highlight=False
        )
