"""Check a command line against the project's real CLIs without running it.

A command line of the docs or of a unit file names an entry point (``gsco-registry``,
``gsco-hub``, ``site-agent``, ``python -m deploy.local.topology``) or a Makefile target. This
walks typer's click tree the way the shell would hand it the words: every subcommand must exist
and every ``--option`` must be one the command (or the group it follows) accepts. Placeholder
values (``NAME``, ``${GSCO_SITE_DIR}``) are fine: values are not converted.
"""

from __future__ import annotations

import importlib
import re
import shlex
import tomllib
from pathlib import Path

import click
from typer.main import get_command

ROOT = Path(__file__).resolve().parents[2]
MODULE_CLIS = {"deploy.local.topology": "deploy.local.topology:app"}


def entry_points() -> dict[str, str]:
    """``[project.scripts]`` of pyproject.toml: program name -> ``module:app``."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def _app(target: str) -> click.Command:
    module, attr = target.split(":")
    return get_command(getattr(importlib.import_module(module), attr))


def _option(command: click.Command, word: str) -> click.Parameter | None:
    name = word.split("=", 1)[0]
    if name == "--help":
        return click.Option(["--help"], is_flag=True)
    for param in command.params:
        if isinstance(param, click.Option) and name in (*param.opts, *param.secondary_opts):
            return param
    return None


def check_words(program: str, target: str, words: list[str]) -> list[str]:
    """Problems of ``words`` (after the program) against the CLI at ``target``; [] when fine."""
    command, path, problems = _app(target), [program], []
    skip_value = False
    for word in words:
        if skip_value:
            skip_value = False
            continue
        if word.startswith("-") and word != "-":
            option = _option(command, word)
            if option is None:
                problems.append(f"{' '.join(path)}: no option {word.split('=', 1)[0]}")
            elif not (option.is_flag or option.count) and "=" not in word:  # type: ignore[attr-defined]
                skip_value = True
        elif isinstance(command, click.Group):
            sub = command.get_command(click.Context(command), word)
            if sub is None:
                problems.append(f"{' '.join(path)}: no subcommand {word}")
                return problems
            command, path = sub, [*path, word]
    if isinstance(command, click.Group):
        problems.append(f"{' '.join(path)}: a group, not a command")
    return problems


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), flags=re.MULTILINE))


def check_line(line: str) -> list[str] | None:
    """Problems of one command line; None when it names none of the project's CLIs."""
    words = [w for w in shlex.split(line, comments=True) if not re.match(r"^[A-Z_]+=", w)]
    if not words:
        return None
    scripts = entry_points()
    if words[0].rsplit("/", 1)[-1] in scripts:
        return check_words(words[0], scripts[words[0].rsplit("/", 1)[-1]], words[1:])
    if words[0].endswith("python") and words[1:2] == ["-m"] and words[2] in MODULE_CLIS:
        return check_words(words[2], MODULE_CLIS[words[2]], words[3:])
    if words[0] == "make":
        return [f"make: no target {t}" for t in words[1:] if "=" not in t and t not in make_targets()]
    return None
