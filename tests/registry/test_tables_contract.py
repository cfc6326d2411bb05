"""One contract suite for the registry's own tables, run on SQLite and on PostgreSQL.

PostgreSQL is the real server on 127.0.0.1:5432 (a scratch database per run); the suite is
skipped for it, with the reason, only when the server cannot be reached.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from gsco_common.audit_chain import GENESIS, link_digest
from gsco_common.errors import AuthError, KeyMaterialError, RegistryError, RegistryUnavailableError
from registry.store import audit, catalog
from registry.store.database import Tables
from tests.registry.conftest import REQUIRE_POSTGRES_ENV, SiteKey, postgres_database


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def tables(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tables]:
    if request.param == "sqlite":
        yield Tables(f"sqlite:///{tmp_path_factory.mktemp('contract') / 'registry.db'}", create=True)
        return
    with postgres_database() as uri:
        opened = Tables(uri, create=True)
        yield opened
        opened.dispose()


@pytest.fixture
def fresh_audit(tables: Tables) -> Tables:
    with tables.engine.begin() as conn:
        conn.execute(text("DELETE FROM gsco_audit"))
    return tables


def test_schema_is_versioned_and_checked_on_open(tables: Tables) -> None:
    Tables(tables.engine.url.render_as_string(hide_password=False)).dispose()
    with tables.engine.begin() as conn:
        conn.execute(text("UPDATE gsco_schema_version SET version = 99"))
    try:
        with pytest.raises(RegistryError, match="schema version 99"):
            Tables(tables.engine.url.render_as_string(hide_password=False))
    finally:
        with tables.engine.begin() as conn:
            conn.execute(text("UPDATE gsco_schema_version SET version = 2"))


def test_tasks(tables: Tables) -> None:
    with tables.session() as session:
        catalog.create_task(session, "contract-task", ["normal", "pneumonia"], "chest X-ray")
    with tables.session() as session:
        assert catalog.get_task(session, "contract-task").labels == ("normal", "pneumonia")
        assert "contract-task" in [t.task_id for t in catalog.list_tasks(session)]
    for bad, message in [
        (("contract-task", ["a", "b"], "x"), "already exists"),
        (("bad id!", ["a", "b"], "x"), "invalid task id"),
        (("one-label", ["a", "a"], "x"), "two distinct labels"),
        (("no-modality", ["a", "b"], " "), "modality"),
    ]:
        with pytest.raises(RegistryError, match=message), tables.session() as session:
            catalog.create_task(session, *bad)
    with pytest.raises(RegistryError, match="unknown task"), tables.session() as session:
        catalog.get_task(session, "nope")


def test_sites_enroll_and_revoke(tables: Tables, site_keys: dict[str, SiteKey]) -> None:
    with tables.session() as session:
        site = catalog.enroll_site(session, "contract-a", site_keys["a"].public_pem)
    with tables.session() as session:
        assert catalog.active_site_for(session, site.fingerprint).name == "contract-a"
    with pytest.raises(RegistryError, match="already enrolled"), tables.session() as session:
        catalog.enroll_site(session, "contract-a", site_keys["b"].public_pem)
    with (
        pytest.raises(RegistryError, match="already enrolled as site 'contract-a'"),
        tables.session() as session,
    ):
        catalog.enroll_site(session, "contract-other", site_keys["a"].public_pem)
    with pytest.raises(KeyMaterialError), tables.session() as session:
        catalog.enroll_site(session, "contract-junk", b"not a key")
    with pytest.raises(AuthError, match="not enrolled"), tables.session() as session:
        catalog.active_site_for(session, "sha256:" + "0" * 64)
    with tables.session() as session:
        assert catalog.revoke_site(session, "contract-a").status == "revoked"
    with pytest.raises(AuthError, match="revoked"), tables.session() as session:
        catalog.active_site_for(session, site.fingerprint)
    with pytest.raises(RegistryError, match="already revoked"), tables.session() as session:
        catalog.revoke_site(session, "contract-a")


def _append(tables: Tables, count: int) -> None:
    for index in range(count):
        with tables.session() as session:
            audit.append(session, actor="central", action="test", subject=f"s{index}", details={"i": index})


def test_audit_chain_verifies(fresh_audit: Tables) -> None:
    _append(fresh_audit, 4)
    with fresh_audit.session() as session:
        report = audit.verify_chain(session)
        assert report.ok and report.entries == 4
        assert [e.subject for e in audit.entries(session, limit=2)] == ["s2", "s3"]


def test_audit_entries_are_hashed_over_their_named_fields_and_read_back_as_written(
    fresh_audit: Tables,
) -> None:
    with fresh_audit.session() as session:
        first = audit.append(
            session, actor="central", action="approve", subject="m/1", details={"b": 1, "a": [1, 2]}
        )
        second = audit.append(session, actor="ops", action="revoke", subject="m/2", details={})
    # UTC with microseconds, and the details as canonical JSON (sorted keys, no spaces)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", first.at)
    fields = {"seq": 1, "at": first.at, "actor": "central", "action": "approve", "subject": "m/1"}
    digest = link_digest({**fields, "details": '{"a":[1,2],"b":1}'}, GENESIS)
    assert first.to_dict() == {
        **fields,
        "details": {"b": 1, "a": [1, 2]},
        "prev_hash": GENESIS,
        "entry_hash": digest,
    }
    assert (second.seq, second.prev_hash) == (2, digest)
    with fresh_audit.session() as session:
        assert audit.entries(session) == [first, second]
        assert audit.verify_chain(session) == audit.ChainReport(2, second.entry_hash)


def test_audit_append_locks_only_the_head_row(fresh_audit: Tables) -> None:
    """On PostgreSQL a writer locks the newest entry (two writers then queue up), not the whole log."""
    if fresh_audit.engine.dialect.name != "postgresql":
        pytest.skip("SQLite locks the whole database file: no row locks to check")
    _append(fresh_audit, 3)
    with fresh_audit.session() as writer:
        audit.append(writer, actor="central", action="test", subject="s3", details={})
        with fresh_audit.engine.connect() as other:
            older = "SELECT seq FROM gsco_audit WHERE seq < 3 ORDER BY seq FOR UPDATE NOWAIT"
            assert other.execute(text(older)).scalars().all() == [1, 2]
            other.rollback()
            with pytest.raises(OperationalError, match="could not obtain lock"):
                other.execute(text("SELECT seq FROM gsco_audit WHERE seq = 3 FOR UPDATE NOWAIT"))


@pytest.mark.parametrize(
    ("tampering", "broken_seq", "reason"),
    [
        ("UPDATE gsco_audit SET actor = 'intruder' WHERE seq = 2", 2, "its content was modified"),
        ("DELETE FROM gsco_audit WHERE seq = 3", 3, "entry 3 is missing (deleted)"),
        (
            f"UPDATE gsco_audit SET prev_hash = '{'f' * 64}' WHERE seq = 3",
            3,
            "its link to the previous entry is broken",
        ),
    ],
    ids=["edited", "deleted", "relinked"],
)
def test_audit_names_the_entry_tampered_with_plain_sql(
    fresh_audit: Tables, tampering: str, broken_seq: int, reason: str
) -> None:
    _append(fresh_audit, 4)
    with fresh_audit.engine.begin() as conn:
        conn.execute(text(tampering))
    with fresh_audit.session() as session:
        report = audit.verify_chain(session)
    assert (report.broken_seq, report.reason) == (broken_seq, reason)


def test_missing_or_uninitialised_databases_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="gsco-registry init"):
        Tables(f"sqlite:///{tmp_path / 'absent.db'}")
    (tmp_path / "empty.db").touch()
    with pytest.raises(RegistryError, match="not initialised"):
        Tables(f"sqlite:///{tmp_path / 'empty.db'}")


def test_an_unreachable_database_is_reported_as_unavailable() -> None:
    with pytest.raises(RegistryUnavailableError, match="cannot be reached"):
        Tables("postgresql+psycopg2://postgres@127.0.0.1:1/none")


@pytest.mark.parametrize(("required", "outcome"), [("1", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_unreachable_postgres_fails_when_required_and_skips_otherwise(
    required: str, outcome: type[BaseException], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(REQUIRE_POSTGRES_ENV, required)
    # Both outcomes are caught, then told apart: a skip where a failure is due must fail this test,
    # not turn it into one more silent skip.
    with pytest.raises(
        (pytest.fail.Exception, pytest.skip.Exception), match="PostgreSQL is not reachable"
    ) as ended:
        with postgres_database("postgresql+psycopg2://postgres@127.0.0.1:1/postgres"):
            pass
    assert ended.type is outcome
