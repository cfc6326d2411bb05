"""What the `gsco-hub` commands share: the chosen registry, the runtime and the generalist."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from gsco_runtime.config import load_runtime_settings
from gsco_runtime.engine import GscoRuntime
from gsco_runtime.generalists import create_backend
from gsco_runtime.generalists.base import GeneralistBackend
from gsco_runtime.pool.registry_source import RegistrySource
from registry.clikit import err_console, options_into
from registry.config import RegistryConfig
from registry.errors import ConfigError, KeyMaterialError
from registry.keys import load_public_key_pem

API_KEY_ENV = "GSCO_GENERALIST_API_KEY"
GENERALISTS = ("none", "openai", "transformers")


@dataclass(frozen=True)
class HubContext:
    registry: RegistryConfig
    central_key: Path | None = None

    @property
    def home(self) -> Path:
        return self.registry.home


def hub_context(ctx: typer.Context) -> HubContext:
    return ctx.find_root().obj


@dataclass(frozen=True)
class GeneralistOptions:
    """The ``--generalist ...`` flags of `diagnose` and `evaluate`."""

    kind: str = "none"
    url: str | None = None
    model: str = "MedDr"
    model_dir: Path | None = None
    device: str = "cpu"
    timeout_s: float = 120.0
    retries: int = 2
    max_tokens: int = 512

    def build(self) -> GeneralistBackend | None:
        if self.kind not in GENERALISTS:
            raise ConfigError(f"--generalist must be one of {', '.join(GENERALISTS)}")
        if self.kind == "none":
            return None
        if self.kind == "openai":
            if not self.url:
                raise ConfigError("--generalist openai needs --generalist-url (e.g. http://gpu-host:8000)")
            return create_backend(
                "openai",
                base_url=self.url,
                model=self.model,
                api_key=os.environ.get(API_KEY_ENV),
                timeout_s=self.timeout_s / (self.retries + 1),
                max_retries=self.retries,
                max_tokens=self.max_tokens,
            )
        if self.model_dir is None:
            raise ConfigError("--generalist transformers needs --model-dir (a local checkpoint folder)")
        return create_backend(
            "transformers",
            model_dir=self.model_dir,
            device=self.device,
            max_new_tokens=self.max_tokens,
            max_time_s=self.timeout_s,
        )


THREADS_OPT = typer.Option(None, "--threads", help="Thread budget of the specialists' sessions.")
JSON_OPT = typer.Option(False, "--json", help="Print JSON for scripts.")
# The ``--generalist ...`` flags, each a GeneralistOptions field behind the prefix ``generalist_``.
_GENERALIST_FLAGS: dict[str, tuple[Any, Any]] = {
    "generalist_kind": (
        str,
        typer.Option("none", "--generalist", help="Decision-maker: none (consensus), openai, transformers."),
    ),
    "generalist_url": (
        str | None,
        typer.Option(
            None, "--generalist-url", help="OpenAI-compatible server (vLLM / lmdeploy serving MedDr)."
        ),
    ),
    "generalist_model": (
        str,
        typer.Option("MedDr", "--generalist-model", help="Model name sent to the server."),
    ),
    "generalist_model_dir": (
        Path | None,
        typer.Option(None, "--model-dir", help="Local checkpoint folder for --generalist transformers."),
    ),
    "generalist_device": (
        str,
        typer.Option("cpu", "--device", help="Device of the transformers backend (cpu, cuda)."),
    ),
    "generalist_timeout_s": (
        float,
        typer.Option(
            120.0,
            "--generalist-timeout",
            help="Seconds for the generalist's answer (all retries), then consensus.",
        ),
    ),
    "generalist_retries": (
        int,
        typer.Option(2, "--generalist-retries", help="Retries of a failed HTTP request."),
    ),
    "generalist_max_tokens": (
        int,
        typer.Option(512, "--max-tokens", help="Longest generalist answer, in tokens."),
    ),
}


def _generalist_options(**flags: Any) -> GeneralistOptions:
    return GeneralistOptions(**{key.removeprefix("generalist_"): value for key, value in flags.items()})


# Decorator of `diagnose` and `evaluate`: the ``--generalist ...`` flags stand in for the
# command's keyword-only parameter ``generalist``, which receives their GeneralistOptions.
generalist_flags = options_into("generalist", _GENERALIST_FLAGS, _generalist_options)


def build_runtime(hub: HubContext, options: GeneralistOptions, threads: int | None = None) -> GscoRuntime:
    """A runtime over the chosen registry (no poll thread: the commands are one-shot)."""
    central = None
    if hub.central_key is not None:
        if not hub.central_key.is_file():
            raise KeyMaterialError("the --central-key file does not exist")
        central = hub.central_key.read_bytes()
        load_public_key_pem(central)
    generalist = options.build()
    settings = load_runtime_settings(
        hub.home, {"threads": threads, "generalist_timeout_s": options.timeout_s}
    )
    return GscoRuntime(RegistrySource(hub.registry, central_key_pem=central), settings, generalist=generalist)


def warn_about_pool(runtime: GscoRuntime) -> None:
    """Tell the user (stderr) when serving from cache or when a version failed to load."""
    status = runtime.pool.status()
    if status.serving_from_cache:
        err_console.print(
            "[yellow]warning[/]: the registry is unreachable; serving verified copies from the local cache",
            highlight=False,
            soft_wrap=True,
        )
    for failure in status.failures:
        err_console.print(
            f"[yellow]warning[/]: {failure.key} not loaded: {failure.message} ({failure.code})",
            highlight=False,
        )


@contextmanager
def task_runtime(
    ctx: typer.Context, task: str, options: GeneralistOptions, threads: int | None
) -> Iterator[GscoRuntime]:
    """A runtime serving ``task`` (pool warnings on stderr), closed when the block ends."""
    runtime = build_runtime(hub_context(ctx), options, threads)
    try:
        runtime.pool.watch([task])
        warn_about_pool(runtime)
        yield runtime
    finally:
        runtime.close()
