"""Attacks on *which* signed model serves: moved aliases, rollback, forged serving state.

Defence: a hub serves only what the newest approved-set statement signed by the pinned central key
lists, refuses lower sequences than it has seen, and keeps its last verified set meanwhile.
The versions are the real specialists (``tests/site_bundle.py``); versions of one model are real
specialists that one site (``SITE``) publishes in turn.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from bench.world import World
from gsco_common.errors import RegistryError, ServingStateError
from gsco_runtime.pool.cache import BundleCache
from gsco_runtime.pool.pool import SpecialistPool
from gsco_runtime.pool.registry_source import RegistrySource
from registry.serving_state import STATEMENT_ACTION, SignedApprovedSet
from tests.security.conftest import rechain, run_sql
from tests.site_bundle import REAL_SITES, SiteBundle, publish_real

SITE = REAL_SITES[0]


def _pool(world: World, tmp_path: Path, task: str) -> SpecialistPool:
    """A hub's pool (its home and cache under ``tmp_path``) watching ``task``."""
    source = RegistrySource(world.config, hub_home=tmp_path / "hub-home")
    pool = SpecialistPool(source, BundleCache(tmp_path / "cache"))
    pool.watch([task])
    return pool


def test_alias_moved_to_an_older_version_is_ignored_and_reported(
    world: World, real_specialists: tuple[SiteBundle, ...], tmp_path: Path
) -> None:
    task = world.new_task()
    name, v1 = publish_real(world, task, real_specialists[0], site=SITE)
    _, v2 = publish_real(world, task, real_specialists[1], site=SITE)  # approving v2 moves the alias
    MlflowClient(tracking_uri=world.config.mlflow_uri).set_registered_model_alias(name, "approved", v1)
    pool = _pool(world, tmp_path, task)
    assert pool.snapshot(task).keys == (f"{name}/{v2}",)
    (served,) = pool.snapshot(task).specialists
    assert served.info.model_uid == real_specialists[1].report.model_uid
    with world.registry() as registry:
        report = registry.verify(name, v1)
    assert not report.approved
    assert (
        report.checks["signed_approved_set"]
        == "not in the signed approved set (the alias `approved` disagrees)"
    )


def test_alias_on_an_unapproved_version_does_not_empty_a_fresh_hub(
    world: World, real_specialists: tuple[SiteBundle, ...], tmp_path: Path
) -> None:
    task = world.new_task()
    name, v1 = publish_real(world, task, real_specialists[0], site=SITE)
    _, pending = publish_real(world, task, real_specialists[2], site=SITE, approve=False)
    MlflowClient(tracking_uri=world.config.mlflow_uri).set_registered_model_alias(name, "approved", pending)
    pool = _pool(world, tmp_path, task)
    assert pool.snapshot(task).keys == (f"{name}/{v1}",)


def test_rollback_to_an_older_statement_is_refused(
    own_world: World, real_specialists: tuple[SiteBundle, ...], tmp_path: Path
) -> None:
    world = own_world
    task = world.new_task()
    name, v1 = publish_real(world, task, real_specialists[0], site=SITE)
    _, v2 = publish_real(world, task, real_specialists[1], site=SITE)
    pool = _pool(world, tmp_path, task)
    assert pool.snapshot(task).keys == (f"{name}/{v2}",)
    # the attacker deletes the newest statement and what follows it (a shorter chain stays valid):
    # statement 1, serving v1, becomes the newest
    run_sql(
        world,
        "DELETE FROM gsco_audit WHERE seq >= "
        "(SELECT MAX(seq) FROM gsco_audit WHERE action = :a AND subject = :t)",
        a=STATEMENT_ACTION,
        t=task,
    )
    status = pool.refresh()
    assert status.tasks == {task: [f"{name}/{v2}"]}  # last verified set keeps serving
    assert status.last_error == (
        f"rollback refused: the approved set of task {task!r} has sequence 1, this hub has already seen 2"
    )
    restarted = _pool(world, tmp_path, task)  # same hub home and cache: the seen sequence persists
    assert restarted.snapshot(task).keys == (f"{name}/{v2}",)


def test_forged_statement_is_refused(
    own_world: World, real_specialists: tuple[SiteBundle, ...], tmp_path: Path
) -> None:
    world = own_world
    task = world.new_task()
    name, v1 = publish_real(world, task, real_specialists[0], site=SITE)
    other, pending_version = publish_real(world, task, real_specialists[1], approve=False)  # its own site
    pool = _pool(world, tmp_path, task)
    with world.registry() as registry:
        signed = registry.serving_statement(task)
        pending = registry.version(other, pending_version)
        statement_seq = next(
            e.seq for e in registry.audit_entries() if e.action == STATEMENT_ACTION and e.subject == task
        )
    assert signed is not None
    forged = signed.to_dict()  # the attacker adds the pending version to the set
    forged["statement"]["versions"].append(
        {
            "name": other,
            "version": pending_version,
            "bundle_digest": pending.bundle_digest,
            "site_fingerprint": pending.site_fingerprint,
        }
    )
    with pytest.raises(ServingStateError, match="is not signed by the pinned central key"):
        SignedApprovedSet.from_dict(forged).verify(world.config.approval_pub_path.read_bytes())
    run_sql(
        world,
        "UPDATE gsco_audit SET details = :d WHERE seq = :s",
        d=json.dumps(forged, sort_keys=True, separators=(",", ":")),
        s=statement_seq,
    )
    rechain(world)  # the plain hash chain verifies again; the signed checkpoint after it does not
    with world.registry() as registry:
        assert registry.audit_verify().ok
        assert registry.trust_problems() == [
            f"the history before entry {statement_seq + 1} was rewritten (signed head differs)"
        ]
    with pytest.raises(ServingStateError) as refused:
        RegistrySource(world.config, hub_home=tmp_path / "another-hub").task_state(task)
    assert (
        refused.value.hint == "run `gsco-registry verify --all`; the hub keeps serving its last verified set"
    )
    status = pool.refresh()
    assert status.tasks == {task: [f"{name}/{v1}"]}  # the forged set is not served
    assert status.last_error == (
        "the registry's trust state fails its audit (1 problem(s)): "
        f"the history before entry {statement_seq + 1} was rewritten (signed head differs)"
    )


def test_promote_serves_an_earlier_approved_version_through_a_signed_set(
    world: World, real_specialists: tuple[SiteBundle, ...], tmp_path: Path
) -> None:
    """The legitimate rollback: the central team signs it, the hub follows, nothing disagrees."""
    task = world.new_task()
    name, v1 = publish_real(world, task, real_specialists[0], site=SITE)
    _, v2 = publish_real(world, task, real_specialists[1], site=SITE)
    _, pending = publish_real(world, task, real_specialists[2], site=SITE, approve=False)
    pool = _pool(world, tmp_path, task)
    assert pool.snapshot(task).keys == (f"{name}/{v2}",)
    with world.registry() as registry:
        before = registry.serving_statement(task)
        promoted = registry.promote(name, v1, reason="v2 drifts", reviewer="dr-x")
        after = registry.serving_statement(task)
        with pytest.raises(RegistryError, match="only approved versions can be promoted"):
            registry.promote(name, pending, reason="not approved", reviewer="dr-x")
        assert registry.verify(name, v1).approved and registry.alias_disagreements(task) == []
        assert registry.trust_problems() == []
        last = registry.audit_entries()[-3:]
    assert promoted.has_approved_alias
    assert before is not None and after is not None
    assert after.statement.sequence == before.statement.sequence + 1
    assert [v.key for v in after.statement.versions] == [f"{name}/{v1}"]
    assert [(e.action, e.subject) for e in last] == [
        ("model.promote", f"{name}/{v1}"),
        (STATEMENT_ACTION, task),
        ("audit.checkpoint", f"head {last[1].seq}"),
    ]
    assert pool.refresh().tasks == {task: [f"{name}/{v1}"]}
    (served,) = pool.snapshot(task).specialists
    assert served.info.model_uid == real_specialists[0].report.model_uid


def test_promote_checks_and_lists_the_one_download_it_verified(
    world: World, real_specialists: tuple[SiteBundle, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rollback verifies and lists the same bytes: one download, not one to check and another to list."""
    task = world.new_task()
    name, v1 = publish_real(world, task, real_specialists[0], site=SITE)
    publish_real(world, task, real_specialists[1], site=SITE)
    with world.registry() as registry:
        real_download = registry.models.download
        downloads: list[str] = []

        def counting_download(ref, dest):  # noqa: ANN001, ANN202 - delegates to the real download
            downloads.append(f"{ref.name}/{ref.version}")
            return real_download(ref, dest)

        monkeypatch.setattr(registry.models, "download", counting_download)
        registry.promote(name, v1, reason="v2 drifts", reviewer="dr-x")
        statement = registry.serving_statement(task)
        digest = registry.version(name, v1).bundle_digest
    assert downloads == [f"{name}/{v1}"]
    assert statement is not None
    assert [(v.key, v.bundle_digest) for v in statement.statement.versions] == [(f"{name}/{v1}", digest)]
