"""Shared CLI plumbing: one-line errors with stable codes, JSON output, rich console, options.

``gsco-registry`` and ``gsco-hub`` build their root app and their registry-choosing options here.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from registry.config import RegistryConfig
from registry.errors import GscoError, PolicyError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(func: F) -> F:
    """Turn a :class:`GscoError` into ``error[CODE]: message`` on stderr and its exit code.

    User mistakes never show a traceback; anything else is a bug and keeps its traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except GscoError as exc:
            err_console.print(
                f"[bold red]error[{exc.code}][/]: {exc.message}", highlight=False, soft_wrap=True
            )
            if isinstance(exc, PolicyError):
                for failure in exc.failures:
                    err_console.print(f"  - {failure}", highlight=False, soft_wrap=True)
            if exc.hint:
                err_console.print(f"hint: {exc.hint}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def print_json(data: Any) -> None:
    """Write JSON to stdout (plain, no rich markup) for scripts."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def print_result(json_output: bool, data: Any, line: str) -> None:
    """Print ``data`` as JSON for scripts, else the one-line summary ``line`` for people."""
    if json_output:
        print_json(data)
    else:
        console.print(line, highlight=False)


def top_level_app(name: str, help: str) -> typer.Typer:
    """A command's root app: help when called bare, no completion commands, plain tracebacks."""
    return typer.Typer(
        name=name, help=help, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False
    )


def options_into(
    name: str, options: dict[str, tuple[Any, Any]], build: Callable[..., Any]
) -> Callable[[F], F]:
    """Let several commands share a group of options (typer has no dependency injection).

    ``options`` maps parameter names to ``(type, typer.Option(...))``. Typer sees them in place of
    the command's keyword-only parameter ``name``, in this order; the command receives
    ``build(**their values)`` as ``name``.
    """

    def decorate(func: F) -> F:
        signature = inspect.signature(func)
        if name not in signature.parameters:
            raise TypeError(f"{func.__name__} has no parameter {name!r} to stand the options in for")
        added = [
            inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
            for key, (kind, option) in options.items()
        ]
        params = [
            new for old in signature.parameters.values() for new in (added if old.name == name else [old])
        ]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {key: kwargs.pop(key) for key in options}
            return func(*args, **kwargs, **{name: build(**values)})

        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        annotations = {key: value for key, value in func.__annotations__.items() if key != name}
        wrapper.__annotations__ = {**annotations, **{key: kind for key, (kind, _) in options.items()}}
        return wrapper  # type: ignore[return-value]

    return decorate


def registry_options(
    *, home: str, tracking_uri: str, db_uri: str, retries: int | None = None
) -> Callable[[F], F]:
    """The ``--home``, ``--tracking-uri`` and ``--db-uri`` options (help texts per command).

    The command's keyword-only parameter ``config`` receives the :class:`RegistryConfig` they
    choose (flag > environment > default), so every command chooses the registry the same way.
    """
    options = {
        "home": (Path | None, typer.Option(None, "--home", help=home)),
        "tracking_uri": (str | None, typer.Option(None, "--tracking-uri", help=tracking_uri)),
        "db_uri": (str | None, typer.Option(None, "--db-uri", help=db_uri)),
    }
    return options_into("config", options, lambda **flags: RegistryConfig.resolve(**flags, retries=retries))
