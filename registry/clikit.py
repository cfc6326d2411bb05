"""Shared CLI plumbing: one-line errors with stable codes, JSON output, rich console."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

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
