"""docs/architecture.md's direction rule holds, nothing imports in a circle, its graph is current."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

from bench.package_graph import BEGIN, DOC, END, ROOT, Import, cycles, imports, mermaid, render, violations


def test_every_import_follows_the_direction_rule() -> None:
    assert violations(imports()) == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    # Imports inside functions count too: a lazy import only hides a circle.
    found = [dataclasses.replace(item, top_level=True) for item in imports()]
    assert cycles(found) == []


def test_the_checks_see_a_wrong_import_and_a_circle() -> None:
    wrong = Import("registry.service", "specialist.models.factory", 1, True)
    assert violations([wrong]) == [
        "registry.service (line 1) imports specialist.models.factory: "
        "registry may import only ['gsco_common']"
    ]
    store = Import("specialist.metrics", "registry.store.models", 3, True)
    assert violations([store]) == [
        "specialist.metrics (line 3) imports registry.store.models: "
        "specialist may import only the registry's bundle format (registry.bundle)"
    ]
    demo = Import("hub.cli.federation_cmd", "deploy.demo.local_federation", 9, True)
    assert violations([demo]) == [
        "hub.cli.federation_cmd (line 9) imports deploy.demo.local_federation: "
        "hub may import only ['gsco_common', 'gsco_runtime', 'registry', 'specialist']"
    ]
    loop = [Import("a.x", "a.y", 1, True), Import("a.y", "a.z", 1, True), Import("a.z", "a.x", 1, True)]
    assert cycles(loop) == [["a.x", "a.y", "a.z"]]
    assert cycles([Import("a.x", "a.y", 1, True), Import("a.y", "a.x", 1, False)]) == []


def test_the_package_graph_in_the_docs_is_current() -> None:
    text = DOC.read_text()
    assert BEGIN in text and END in text
    assert render(text, mermaid(imports())) == text, (
        "docs/architecture.md's package graph is stale: run `python bench/package_graph.py --write`"
    )


def _loaded_after(module: str) -> list[str]:
    heavy = "sorted(m for m in ('torch', 'flwr') if m in sys.modules)"
    code = f"import json, sys, {module}; print(json.dumps({heavy}))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_registry_or_the_shared_plumbing_loads_neither_torch_nor_flwr() -> None:
    assert _loaded_after("registry") == []
    assert _loaded_after("registry.service") == []
    assert _loaded_after("registry.cli.main") == []
    assert _loaded_after("gsco_common.cli") == []
    # and the check would see it: the specialist's wire format needs both
    assert _loaded_after("specialist.federation.wire") == ["flwr", "torch"]
