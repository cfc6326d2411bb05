"""`with_registry_flags`: the three registry options, declared once, reach a command as one value;
`print_table`: a listing as JSON for scripts or a table for people."""

from __future__ import annotations

import json
import re

import pytest
import typer
from typer.testing import CliRunner

from gsco_common.cli import RegistryFlags, print_table, top_level_app, with_registry_flags

runner = CliRunner()


def _app() -> typer.Typer:
    app = top_level_app("flags", "Prints the registry flags it was given.")

    @app.callback(invoke_without_command=True)
    @with_registry_flags
    def main(
        ctx: typer.Context, registry_flags: RegistryFlags, label: str = typer.Option("x", "--label")
    ) -> None:
        ctx.obj = registry_flags
        typer.echo(json.dumps({"label": label, **{key: str(value) for key, value in registry_flags.items()}}))

    @app.command()
    def nothing() -> None:
        """A command, so that the callback is a group's."""

    return app


@pytest.mark.parametrize(
    ("args", "received"),
    [
        (
            ["--home", "/srv/gsco", "--db-uri", "sqlite:///r.db", "--label", "y"],
            {"label": "y", "home": "/srv/gsco", "tracking_uri": "None", "db_uri": "sqlite:///r.db"},
        ),
        (["nothing"], {"label": "x", "home": "None", "tracking_uri": "None", "db_uri": "None"}),
    ],
    ids=["given", "not-given"],
)
def test_the_command_receives_the_three_options_as_one_value(
    args: list[str], received: dict[str, str]
) -> None:
    result = runner.invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == received


def test_help_lists_the_options_where_the_parameter_stands() -> None:
    lines = runner.invoke(_app(), ["--help"], terminal_width=200).stdout.splitlines()
    names = [line.split()[1] for line in lines if line.startswith("│ --")]
    assert names == ["--home", "--tracking-uri", "--db-uri", "--label", "--help"]


def test_a_function_without_the_parameter_is_refused() -> None:
    def main(ctx: typer.Context) -> None:
        """No registry_flags."""

    with pytest.raises(TypeError, match="main has no parameter registry_flags"):
        with_registry_flags(main)


def test_print_table_gives_scripts_json_and_people_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    data = [{"name": "site-a", "status": "active"}, {"name": "site-b", "status": "revoked"}]
    rows = [("site-a", "active"), ("site-b", "revoked")]
    print_table(True, data, ("site", "status"), rows)
    assert json.loads(capsys.readouterr().out) == data
    print_table(False, data, ("site", "status"), rows)
    lines = [line for line in capsys.readouterr().out.splitlines() if line[0] in "│┃"]
    assert [[cell.strip() for cell in re.split("[│┃]", line)[1:-1]] for line in lines] == [
        ["site", "status"],
        ["site-a", "active"],
        ["site-b", "revoked"],
    ]
