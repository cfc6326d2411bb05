"""`topology restore` trusts a backup folder only when every file matches its manifest.

No PostgreSQL needed: the manifest and the refusals are checked on files written here. The whole
backup, wipe and restore runs on the real topology in tests/deploy/test_topology.py.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from deploy.local.backup import BACKUP_FORMAT, StatePaths, check_backup, create_backup
from gsco_common.errors import ConfigError

FILES = {"mlflow.dump": b"dump-1", "hub.dump": b"dump-2", "artifacts/1/model.onnx": b"onnx"}


def _backup(folder: Path) -> Path:
    for name, data in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    files = {name: hashlib.sha256(data).hexdigest() for name, data in FILES.items()}
    (folder / "manifest.json").write_text(json.dumps({"format": BACKUP_FORMAT, "files": files}))
    return folder


def test_an_intact_backup_passes(tmp_path: Path) -> None:
    assert set(check_backup(_backup(tmp_path))["files"]) == set(FILES)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "hub.dump").write_bytes(b"dump-X"), "backup file hub.dump is changed"),
        (lambda d: (d / "artifacts/1/model.onnx").unlink(), "backup file artifacts/1/model.onnx is missing"),
        (lambda d: (d / "extra.bin").write_bytes(b"?"), "backup file extra.bin is not in the manifest"),
        (lambda d: (d / "manifest.json").unlink(), "is not a topology backup (no readable manifest.json)"),
        (
            lambda d: (d / "manifest.json").write_text('{"format": "x"}'),
            "format is not gsco-topology-backup-1",
        ),
    ],
)
def test_a_damaged_backup_is_refused_naming_the_file(
    tmp_path: Path, damage: Callable[[Path], object], message: str
) -> None:
    damage(_backup(tmp_path))
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_backup(tmp_path)


def test_backup_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "old").write_text("x")
    paths = StatePaths.of(tmp_path / "state", tmp_path / "central")
    with pytest.raises(ConfigError, match="is not empty"):
        create_backup(
            tmp_path,
            mlflow_db_url="postgresql+psycopg2://x/a",
            hub_db_url="postgresql+psycopg2://x/b",
            paths=paths,
        )
