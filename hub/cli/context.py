"""What the `gsco-hub` commands share: the chosen registry, the runtime and the generalist."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperCommand, TyperOption

from gsco_common.cli import err_console
from gsco_common.errors import ConfigError
from gsco_runtime.config import load_runtime_settings
from gsco_runtime.engine import GscoRuntime
from gsco_runtime.generalists import create_backend
from gsco_runtime.generalists.base import GeneralistBackend
from gsco_runtime.pool.registry_source import RegistrySource
from registry.config import RegistryConfig
from registry.pinning import read_central_key_file

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


Threads = Annotated[int | None, typer.Option("--threads", help="Thread budget of the specialists' sessions.")]


# Prefix of the flags' parameter names, so that none shadows a command's own (evaluate's --kind).
_PARAM_PREFIX = "generalist_option_"


def _flag(flag: str, field: str, help_text: str, default: Any = None, kind: Any = None) -> TyperOption:
    return TyperOption(
        param_decls=[flag, _PARAM_PREFIX + field],
        type=kind,
        default=default,
        show_default=default is not None,
        help=help_text,
    )


# The ``--generalist ...`` flags of `diagnose` and `evaluate`, declared once: each is a click
# option whose parameter name is the prefixed GeneralistOptions field it sets.
GENERALIST_FLAGS = (
    _flag("--generalist", "kind", "Decision-maker: none (consensus), openai, transformers.", "none"),
    _flag("--generalist-url", "url", "OpenAI-compatible server (vLLM / lmdeploy serving MedDr)."),
    _flag("--generalist-model", "model", "Model name sent to the server.", "MedDr"),
    _flag("--model-dir", "model_dir", "Local checkpoint folder for --generalist transformers.", kind=Path),
    _flag("--device", "device", "Device of the transformers backend (cpu, cuda).", "cpu"),
    _flag(
        "--generalist-timeout",
        "timeout_s",
        "Seconds for the generalist's answer (all retries), then consensus.",
        120.0,
    ),
    _flag("--generalist-retries", "retries", "Retries of a failed HTTP request.", 2),
    _flag("--max-tokens", "max_tokens", "Longest generalist answer, in tokens.", 512),
)
_OPTIONS_KEY = "gsco.generalist"


class GeneralistCommand(TyperCommand):
    """A typer command that also takes the ``--generalist ...`` flags (``cls=`` of ``app.command``).

    Click parses the flags with the command's own; :meth:`invoke` takes them out of the
    parameters passed to the function and keeps them as one :class:`GeneralistOptions`, which the
    function reads with :func:`generalist_options`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        own = {decl for param in self.params for decl in (param.name, *param.opts)}
        clashes = own & {decl for flag in GENERALIST_FLAGS for decl in (flag.name, *flag.opts)}
        if clashes:
            raise TypeError(f"command {self.name!r} redeclares generalist flags: {sorted(map(str, clashes))}")
        self.params.extend(GENERALIST_FLAGS)

    def invoke(self, ctx: click.Context) -> Any:
        fields = {
            flag.name.removeprefix(_PARAM_PREFIX): ctx.params.pop(flag.name)
            for flag in GENERALIST_FLAGS
            if flag.name
        }
        ctx.meta[_OPTIONS_KEY] = GeneralistOptions(**fields)
        return super().invoke(ctx)


def generalist_options(ctx: typer.Context) -> GeneralistOptions:
    """The ``--generalist ...`` flags of the running :class:`GeneralistCommand`."""
    return ctx.meta[_OPTIONS_KEY]


def build_runtime(hub: HubContext, options: GeneralistOptions, threads: int | None = None) -> GscoRuntime:
    """A runtime over the chosen registry (no poll thread: the commands are one-shot)."""
    central = read_central_key_file(hub.central_key)
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
