"""Shared CLI plumbing: one-line errors with stable codes, JSON output, rich console, options.

The three CLIs (``site-agent``, ``gsco-registry``, ``gsco-hub``) follow one pattern: their
``main.py`` builds the root app with :func:`top_level_app` and registers the functions of their
command modules (which never import ``main``); shared options are the ``Annotated`` aliases
below, used as ``json_output: JsonFlag = False``.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from gsco_common.errors import GscoError, PolicyError

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


def print_table(json_output: bool, data: Any, headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Print ``data`` as JSON for scripts, else a table of ``rows`` under ``headers`` for people."""
    if json_output:
        print_json(data)
        return
    table = Table(*headers)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def top_level_app(name: str, help: str) -> typer.Typer:
    """A command's root app: help when called bare, no completion commands, plain tracebacks."""
    return typer.Typer(
        name=name, help=help, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False
    )


# Options that several commands share, declared once (``name: JsonFlag = False``).
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
# The registry every command of ``gsco-registry`` and ``gsco-hub`` works on (flag > environment >
# default, resolved by ``registry.config.RegistryConfig.resolve``).
HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home", help="Registry home (embedded database, artifacts, keys). Default: GSCO_HOME or ~/.gsco."
    ),
]
TrackingUriOption = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking server or database URI. Default: GSCO_TRACKING_URI, else embedded.",
    ),
]
DbUriOption = Annotated[
    str | None,
    typer.Option(
        "--db-uri",
        help="Database of the registry's own tables (needed with a server). Default: GSCO_REGISTRY_DB.",
    ),
]
