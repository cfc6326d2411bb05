"""What the `gsco-hub` commands share: the chosen registry, the runtime and the generalist."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from gsco_common.cli import err_console
from gsco_common.errors import ConfigError, KeyMaterialError
from gsco_common.keys import load_public_key_pem
from gsco_runtime.config import load_runtime_settings
from gsco_runtime.engine import GscoRuntime
from gsco_runtime.generalists import create_backend
from gsco_runtime.generalists.base import GeneralistBackend
from gsco_runtime.pool.registry_source import RegistrySource
from registry.config import RegistryConfig

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


# A command's parameter name -> the GeneralistOptions field it sets. `diagnose` and `evaluate`
# declare these parameters with the option aliases below and build the options from them.
GENERALIST_FLAGS = {
    "generalist": "kind",
    "generalist_url": "url",
    "generalist_model": "model",
    "model_dir": "model_dir",
    "device": "device",
    "generalist_timeout": "timeout_s",
    "generalist_retries": "retries",
    "max_tokens": "max_tokens",
}


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

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> GeneralistOptions:
        """The options from a command's parsed flags (``ctx.params``), named as in ``GENERALIST_FLAGS``."""
        return cls(**{field: params[name] for name, field in GENERALIST_FLAGS.items()})

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


# Options of `diagnose` and `evaluate`, declared once. The ``--generalist ...`` flags are the
# fields of :class:`GeneralistOptions` (see ``GENERALIST_FLAGS``).
Threads = Annotated[int | None, typer.Option("--threads", help="Thread budget of the specialists' sessions.")]
GeneralistKind = Annotated[
    str, typer.Option("--generalist", help="Decision-maker: none (consensus), openai, transformers.")
]
GeneralistUrl = Annotated[
    str | None,
    typer.Option("--generalist-url", help="OpenAI-compatible server (vLLM / lmdeploy serving MedDr)."),
]
GeneralistModel = Annotated[str, typer.Option("--generalist-model", help="Model name sent to the server.")]
GeneralistModelDir = Annotated[
    Path | None, typer.Option("--model-dir", help="Local checkpoint folder for --generalist transformers.")
]
GeneralistDevice = Annotated[
    str, typer.Option("--device", help="Device of the transformers backend (cpu, cuda).")
]
GeneralistTimeout = Annotated[
    float,
    typer.Option(
        "--generalist-timeout", help="Seconds for the generalist's answer (all retries), then consensus."
    ),
]
GeneralistRetries = Annotated[
    int, typer.Option("--generalist-retries", help="Retries of a failed HTTP request.")
]
GeneralistMaxTokens = Annotated[
    int, typer.Option("--max-tokens", help="Longest generalist answer, in tokens.")
]


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
