"""The operator guides' commands are real: every line of their ```bash blocks is checked.

A line that names one of our CLIs (`gsco-registry`, `gsco-hub`, `site-agent`, `python -m
deploy.local.topology`, `make`) must name existing subcommands and accepted options
(tests/deploy/cli_lines.py); any other line must start with a tool from :data:`EXTERNAL`, so a
misspelt command of ours cannot pass as someone else's. Each guide names the tests that run its
sequences; those test files must exist.
"""

from __future__ import annotations

import re
import shlex

import pytest

from tests.deploy.cli_lines import ROOT, check_line

GUIDES = ("quickstart.md", "hospital-it.md", "central-team.md", "operations.md", "clinician-guide.md")
EXTERNAL = {"export", "useradd", "python3.11", "pip", "install", "systemctl"}
FENCE = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)


def bash_lines(text: str) -> list[str]:
    """Every command of the ```bash blocks, continuation lines joined, comments and blanks dropped."""
    lines = []
    for block in FENCE.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                lines.append(shlex.join(words))
    return lines


def problems_of(line: str) -> list[str]:
    found = check_line(line)
    if found is None:
        program = shlex.split(line)[0].rsplit("/", 1)[-1]
        return [] if program in EXTERNAL else [f"{program}: not one of our CLIs nor an allowed tool"]
    return found


@pytest.mark.parametrize("guide", GUIDES)
def test_every_command_of_the_guide_exists_with_its_options(guide: str) -> None:
    lines = bash_lines((ROOT / "docs" / guide).read_text())
    assert {line: problems_of(line) for line in lines} == dict.fromkeys(lines, [])


@pytest.mark.parametrize("guide", GUIDES)
def test_each_guide_names_existing_tests_that_run_it(guide: str) -> None:
    named = set(re.findall(r"tests/[\w/]+\.py", (ROOT / "docs" / guide).read_text()))
    assert named and sorted(path for path in named if not (ROOT / path).is_file()) == []


def test_the_checks_catch_a_wrong_subcommand_option_tool_and_make_target() -> None:
    text = (
        "```bash\ngsco-registry sites rotat site-a\nsite-agent rotate-key SITE --force\n"
        "kubectl apply -f x.yaml\nmake upp\ngsco-registry \\\n  sites keys --json  # ok\n```\n"
    )
    lines = bash_lines(text)
    assert [problems_of(line) for line in lines] == [
        ["gsco-registry sites: no subcommand rotat"],
        ["site-agent rotate-key: no option --force"],
        ["kubectl: not one of our CLIs nor an allowed tool"],
        ["make: no target upp"],
        [],
    ]
