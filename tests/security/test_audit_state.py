"""Attacks with write access to the registry database: un-revoke a site, delete an approval row,
rewrite history and recompute the hash chain. Defence: trust state re-derived from the audit log
and signed checkpoints of its head; `gsco-registry verify --all` lists it and the hub refuses.
The registries publish the real specialists (``tests/site_bundle.py``) from their own sites."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from bench.world import World
from gsco_runtime.pool.cache import BundleCache
from gsco_runtime.pool.pool import SpecialistPool
from gsco_runtime.pool.registry_source import RegistrySource
from registry.cli.main import app
from tests.security.conftest import rechain, run_sql
from tests.site_bundle import SiteBundle, publish_real

runner = CliRunner()


def _verify_all(world: World) -> tuple[int, list[str]]:
    result = runner.invoke(app, ["--home", str(world.config.home), "verify", "--all", "--json"])
    return result.exit_code, json.loads(result.stdout)["problems"]


def test_clean_registry_passes_verify_all(own_world: World, real_specialists: tuple[SiteBundle, ...]) -> None:
    task = own_world.new_task()
    name, version = publish_real(own_world, task, real_specialists[0])
    own_world.revoke(name, version)
    assert _verify_all(own_world) == (0, [])


def test_site_unrevoked_with_sql_is_found_and_refused_by_the_hub(
    own_world: World, real_specialists: tuple[SiteBundle, ...], tmp_path: Path
) -> None:
    world = own_world
    task = world.new_task()
    name, version = publish_real(world, task, real_specialists[0])
    pool = SpecialistPool(
        RegistrySource(world.config, hub_home=tmp_path / "hub"), BundleCache(tmp_path / "c")
    )
    pool.watch([task])
    with world.registry() as registry:
        registry.revoke_site("real-2", reason="key leaked")
    run_sql(world, "UPDATE gsco_sites SET status = 'active', revoked_at = NULL WHERE name = 'real-2'")
    code, problems = _verify_all(world)
    assert (code, problems) == (
        6,
        ["site 'real-2': key or status in the sites table differ from the audit log"],
    )
    status = pool.refresh()
    assert status.tasks == {task: [f"{name}/{version}"]}  # keeps its last verified set
    (kept,) = pool.snapshot(task).specialists
    assert kept.info.model_uid == real_specialists[0].report.model_uid
    assert status.last_error == (
        "the registry's trust state fails its audit (1 problem(s)): "
        "site 'real-2': key or status in the sites table differ from the audit log"
    )


def test_deleted_approval_row_is_found(own_world: World, real_specialists: tuple[SiteBundle, ...]) -> None:
    task = own_world.new_task()
    name, version = publish_real(own_world, task, real_specialists[0])
    own_world.revoke(name, version)
    run_sql(own_world, "DELETE FROM gsco_approvals WHERE decision = 'revoked'")
    assert _verify_all(own_world) == (
        6,
        [f"approval decision {name}/{version} revoked (audited, row missing)"],
    )


def test_history_rewritten_with_a_recomputed_chain_is_found(
    own_world: World, real_specialists: tuple[SiteBundle, ...]
) -> None:
    task = own_world.new_task()
    publish_real(own_world, task, real_specialists[0])  # approve signs a checkpoint of the head
    run_sql(own_world, "UPDATE gsco_audit SET actor = 'someone-else' WHERE action = 'site.enroll'")
    rechain(own_world)
    home = ["--home", str(own_world.config.home)]
    assert runner.invoke(app, [*home, "audit", "verify"]).exit_code == 0  # the plain chain is fooled
    code, problems = _verify_all(own_world)
    assert code == 6 and len(problems) == 1
    assert problems[0].startswith("the history before entry ") and problems[0].endswith(
        " was rewritten (signed head differs)"
    )
