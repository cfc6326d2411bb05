"""The hub's audit trail is hash-chained: `gsco-hub audit verify` finds rows edited with SQL."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from gsco_common.audit_chain import GENESIS, link_digest
from gsco_common.errors import ConfigError
from hub.cli.main import app
from hub.service.audit import DIAGNOSIS, REVIEW, HubRecords
from hub.service.database import HubDatabase

runner = CliRunner()


def _trail(home: Path, count: int) -> HubDatabase:
    db = HubDatabase(f"sqlite:///{home / 'hub' / 'hub.db'}")
    records = HubRecords(db)
    for index in range(count):
        records.append(
            f"clinician:dr-{index}",
            REVIEW if index % 2 else DIAGNOSIS,
            task_id="task-a",
            image_sha256=f"{index:064x}",
            models=[{"name": "m", "version": "1"}],
            decision={"label": "pneumonia", "confidence": 0.75},
        )
    return db


def _verify(home: Path, *extra: str):
    return runner.invoke(app, ["--home", str(home), "audit", "verify", *extra])


def test_the_chain_digest_is_sha256_of_canonical_json_with_the_link() -> None:
    fields = {"seq": 1, "actor": "a", "details": '{"x":1}'}
    expected = hashlib.sha256(b'{"actor":"a","details":"{\\"x\\":1}","prev":"' + b"0" * 64 + b'","seq":1}')
    assert link_digest(fields, GENESIS) == expected.hexdigest()


def test_an_intact_trail_verifies_and_prints_its_head(tmp_path: Path) -> None:
    db = _trail(tmp_path, 4)
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT seq, prev_hash, entry_hash FROM hub_audit ORDER BY seq")).all()
    db.close()
    assert [r.seq for r in rows] == [1, 2, 3, 4]
    assert rows[0].prev_hash == GENESIS
    assert [r.prev_hash for r in rows[1:]] == [r.entry_hash for r in rows[:-1]]
    result = _verify(tmp_path, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"ok": True, "entries": 4, "head_hash": rows[-1].entry_hash}


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ("UPDATE hub_audit SET actor = 'intruder' WHERE seq = 3", "entry 3: its content was modified"),
        (
            "UPDATE hub_audit SET details = replace(details, 'pneumonia', 'normal') WHERE seq = 3",
            "entry 3: its content was modified",
        ),
        ("UPDATE hub_audit SET image_sha256 = NULL WHERE seq = 3", "entry 3: its content was modified"),
        ("UPDATE hub_audit SET prev_hash = :h WHERE seq = 3", "entry 3: its link to the previous entry"),
        ("DELETE FROM hub_audit WHERE seq = 3", "entry 3: entry 3 is missing (deleted)"),
    ],
)
def test_verify_names_the_entry_changed_with_sql(tmp_path: Path, statement: str, reason: str) -> None:
    db = _trail(tmp_path, 5)
    with db.engine.begin() as conn:
        assert conn.execute(text(statement), {"h": "f" * 64}).rowcount == 1
    db.close()
    result = _verify(tmp_path)
    assert result.exit_code == 13
    assert "error[GSCO-550]" in result.stderr
    assert f"the hub audit trail is broken at {reason}" in result.stderr
    # the entries after the broken one stay readable for the investigation
    shown = runner.invoke(app, ["--home", str(tmp_path), "audit", "show", "--json"])
    assert shown.exit_code == 0 and [e["seq"] for e in json.loads(shown.stdout)][-1] == 5


def test_appending_after_a_reopen_continues_the_chain(tmp_path: Path) -> None:
    _trail(tmp_path, 2).close()
    db = _trail(tmp_path, 2)
    db.close()
    result = _verify(tmp_path, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["entries"] == 4


def test_concurrent_writers_keep_one_chain(tmp_path: Path) -> None:
    """Several workers share one database: racing appends neither fork nor lose the chain."""
    _trail(tmp_path, 1).close()
    url = f"sqlite:///{tmp_path / 'hub' / 'hub.db'}"
    databases = [HubDatabase(url) for _ in range(4)]

    def write(db: HubDatabase) -> list[int]:
        return [HubRecords(db).append("clinician:x", DIAGNOSIS, task_id="t") for _ in range(10)]

    with ThreadPoolExecutor(4) as pool:
        written = sorted(seq for seqs in pool.map(write, databases) for seq in seqs)
    for db in databases:
        db.close()
    assert written == list(range(2, 42))
    result = _verify(tmp_path, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["entries"] == 41


def test_a_database_with_the_unchained_audit_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE hub_audit (seq INTEGER PRIMARY KEY, at DATETIME, actor VARCHAR)"))
    engine.dispose()
    with pytest.raises(ConfigError, match="predates the hash-chained audit trail"):
        HubDatabase(f"sqlite:///{path}")


def test_every_review_is_kept_and_a_review_from_before_the_history_still_shows(tmp_path: Path) -> None:
    db = HubDatabase(f"sqlite:///{tmp_path / 'hub.db'}")
    records = HubRecords(db)
    records.save_decision("d1", "task-a", {"id": "d1", "label": "normal"})
    first, second = {"action": "override", "label": "pneumonia"}, {"action": "confirm", "label": "normal"}
    records.save_review("d1", first)
    records.save_review("d1", second)
    assert records.decision("d1") == {
        "id": "d1",
        "label": "normal",
        "review": second,
        "reviews": [first, second],
    }
    records.save_decision("d2", "task-a", {"id": "d2", "label": "normal"})
    with db.engine.begin() as connection:  # what a hub that kept only the latest review wrote
        connection.execute(
            text("UPDATE hub_decisions SET review = :r WHERE id = 'd2'"), {"r": json.dumps(first)}
        )
    db.close()
    db = HubDatabase(f"sqlite:///{tmp_path / 'hub.db'}")  # the next start moves it into the history
    records = HubRecords(db)
    assert records.decision("d2")["reviews"] == [first]
    records.save_review("d2", second)  # reviewed again: the earlier review stays in the history
    assert records.decision("d2")["reviews"] == [first, second]
    assert records.decision("d1")["reviews"] == [first, second]  # moved once, nothing doubled
    with db.engine.begin() as connection:
        assert (
            connection.execute(text("SELECT count(*) FROM hub_decisions WHERE review != 'null'")).scalar()
            == 0
        )
    db.close()
    HubDatabase(f"sqlite:///{tmp_path / 'hub.db'}").close()  # opening again moves nothing twice
    assert HubRecords(HubDatabase(f"sqlite:///{tmp_path / 'hub.db'}")).decision("d2")["reviews"] == [
        first,
        second,
    ]
