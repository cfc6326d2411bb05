"""check_output_folder: a folder a command will write to is refused up front when it cannot be;
not_there: why a path is not the file or folder a command wanted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gsco_common.errors import ConfigError
from gsco_common.paths import check_output_folder, not_there


def test_a_folder_that_can_be_made_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_output_folder("--out", None)
    check_output_folder("--out", tmp_path)
    check_output_folder("--out", tmp_path / "new" / "deeper")
    monkeypatch.chdir(tmp_path)
    check_output_folder("--out", Path("relative") / "new")
    assert sorted(os.listdir(tmp_path)) == []  # nothing is created by the check


def test_a_file_on_the_way_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a-file").write_text("kept")
    for folder in (tmp_path / "a-file", tmp_path / "a-file" / "below"):
        with pytest.raises(ConfigError, match="^--out must name a folder: 'a-file' is a file"):
            check_output_folder("--out", folder)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="^--work must name a folder: 'a-file' is a file"):
        check_output_folder("--work", Path("a-file") / "w")
    assert (tmp_path / "a-file").read_text() == "kept"


def test_a_broken_link_is_named(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    with pytest.raises(ConfigError, match=f"^--out: {tmp_path / 'link'} is a broken link"):
        check_output_folder("--out", tmp_path / "link" / "below")


def test_a_folder_that_cannot_be_looked_at_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As Path.exists raises on Python 3.11 under a folder without search permission (root never sees it)."""

    def denied(self: Path, *args: object, **kwargs: object) -> bool:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "exists", denied)
    with pytest.raises(ConfigError, match=r"cannot be looked at \(Permission denied\)$"):
        check_output_folder("--out", tmp_path / "closed" / "out")


def test_not_there_tells_a_missing_path_from_one_of_the_other_kind(tmp_path: Path) -> None:
    a_file = tmp_path / "f.png"
    a_file.write_bytes(b"")
    assert not_there(tmp_path / "absent", "file") == "does not exist"
    assert not_there(tmp_path, "file") == "is a folder, not a file"
    assert not_there(a_file, "folder") == "is a file, not a folder"
