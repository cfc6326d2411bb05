from __future__ import annotations

from pathlib import Path

import pytest

from gsco_common.errors import ConfigError, RuntimeServiceError
from gsco_runtime.config import load_runtime_settings
from gsco_runtime.task import load_task_definitions, resolve_task

LABELS = ("normal", "pneumonia")


def test_precedence_file_environment_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "runtime.yaml").write_text("threads: 3\npoll_interval_s: 5\nk: 7\n")
    settings = load_runtime_settings(tmp_path)
    assert (settings.threads, settings.poll_interval_s, settings.k) == (3, 5.0, 7)
    monkeypatch.setenv("GSCO_RUNTIME_THREADS", "4")
    assert load_runtime_settings(tmp_path).threads == 4
    assert load_runtime_settings(tmp_path, {"threads": 1, "k": None}).threads == 1
    assert settings.resolved_cache_dir == tmp_path / "hub" / "cache"


def test_errors_name_the_key(tmp_path: Path) -> None:
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "runtime.yaml").write_text("poll_interval_s: -1\n")
    with pytest.raises(ConfigError, match="poll_interval_s"):
        load_runtime_settings(tmp_path)
    (tmp_path / "hub" / "runtime.yaml").write_text("thread: 2\n")
    with pytest.raises(ConfigError, match="thread"):
        load_runtime_settings(tmp_path)


def test_task_definitions(tmp_path: Path) -> None:
    (tmp_path / "hub").mkdir()
    path = tmp_path / "hub" / "tasks.yaml"
    path.write_text("tasks:\n  pneu:\n    modality: CXR\n    synonyms:\n      pneumonia: [consolidation]\n")
    spec = resolve_task("pneu", [(LABELS, "chest X-ray")], load_task_definitions(tmp_path))
    assert spec.modality == "CXR" and spec.synonyms == {"pneumonia": ("consolidation",)}
    assert resolve_task("other", [(LABELS, "chest X-ray")], {}).modality == "chest X-ray"
    with pytest.raises(RuntimeServiceError, match="label order"):
        resolve_task("pneu", [(LABELS, "m"), (LABELS[::-1], "m")], {})
    path.write_text("tasks:\n  pneu:\n    synonyms:\n      covid: [x]\n")
    with pytest.raises(ConfigError, match="unknown labels"):
        resolve_task("pneu", [(LABELS, "m")], load_task_definitions(tmp_path))
    path.write_text("tasks:\n  pneu:\n    synonym: {}\n")
    with pytest.raises(ConfigError, match="tasks.pneu.synonym"):
        load_task_definitions(tmp_path)
