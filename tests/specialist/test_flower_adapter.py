"""Every non-public Flower name GSCo uses goes through specialist/federation/flower.py and still exists."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
from pathlib import Path

import pytest

from specialist.federation import flower

ROOT = Path(__file__).resolve().parents[2]
ADAPTER = "specialist/federation/flower.py"
OURS = (
    "gsco_common",
    "registry",
    "specialist",
    "gsco_runtime",
    "site_agent",
    "hub",
    "bench",
    "tests",
    "deploy",
)


@pytest.mark.parametrize("name", sorted(flower.ADAPTED))
def test_every_adapted_name_is_where_the_adapter_takes_it_from(name: str) -> None:
    module_name = flower.ADAPTED[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        pytest.fail(f"Flower no longer has module {module_name}: fix {ADAPTER} ({name})")
    assert hasattr(module, name), f"Flower moved {module_name}.{name}: fix {ADAPTER}"
    assert getattr(flower, name) is getattr(module, name)


@pytest.mark.parametrize("owner", list(flower.ADAPTED_ATTRIBUTES), ids=lambda owner: owner.__name__)
def test_every_private_attribute_still_exists(owner: type) -> None:
    init = inspect.getsource(owner.__init__)
    for attribute in flower.ADAPTED_ATTRIBUTES[owner]:
        assert hasattr(owner, attribute) or f"self.{attribute} =" in init, (
            f"Flower's {owner.__name__} has no {attribute} any more: fix {ADAPTER}"
        )


def test_only_the_adapter_imports_non_public_flower_modules() -> None:
    offenders = []
    for package in OURS:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.relative_to(ROOT).as_posix() == ADAPTER:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                elif isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                for name in names:
                    if name.split(".")[0] == "flwr" and name not in flower.PUBLIC_MODULES:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert offenders == []


def test_flower_is_pinned_to_the_tested_version() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'"flwr=={importlib.metadata.version("flwr")}"' in pyproject
