"""Attack: re-publish a revoked model.onnx under a new card (another site, a new version).

Defence: revocation covers the model's content digest; only an audited lift allows it again.
The revoked model is a real specialist (``tests/site_bundle.py``), revoked in a registry of the
test's own so that the shared registry keeps serving it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.world import World
from gsco_common.errors import PolicyError, SignatureError
from gsco_runtime.pool.cache import BundleCache
from gsco_runtime.pool.pool import SpecialistPool
from gsco_runtime.pool.registry_source import RegistrySource
from registry.bundle.layout import MODEL_FILE, file_sha256
from registry.cli.main import app
from registry.trust import verify_approved
from tests.site_bundle import SiteBundle, publish_real

runner = CliRunner()


def _model_digest(world: World, name: str, version: str) -> str:
    with world.registry() as registry, tempfile.TemporaryDirectory() as tmp:
        return "sha256:" + file_sha256(registry.download_bundle(name, version, Path(tmp) / "b") / MODEL_FILE)


def test_revoked_model_cannot_be_approved_again_under_a_new_card(
    own_world: World, real_specialists: tuple[SiteBundle, ...]
) -> None:
    world, specialist = own_world, real_specialists[0]
    task = world.new_task()
    name, version = publish_real(world, task, specialist)
    digest = _model_digest(world, name, version)
    assert digest == "sha256:" + file_sha256(specialist.folder / MODEL_FILE)  # the site's export
    world.revoke(name, version)
    again, new_version = publish_real(world, task, specialist, site="real-2", approve=False)
    assert again != name  # same model.onnx, other card and site
    assert _model_digest(world, again, new_version) == digest
    with world.registry() as registry:
        with pytest.raises(PolicyError) as refused:
            registry.approve(again, new_version, reviewer="tester")
        assert refused.value.failures == [
            f"revoked_model: its model.onnx ({digest}) was revoked by the central team"
        ]
        assert registry.version(again, new_version).status == "pending"
        assert registry.audit_entries(limit=1)[0].action == "model.approve_refused"

    home = ["--home", str(world.config.home)]
    lifted = runner.invoke(app, [*home, "lift-revocation", digest, "--reason", "false alarm", "--json"])
    assert lifted.exit_code == 0, lifted.output
    assert json.loads(lifted.stdout) == {"model_digest": digest, "lifted": True}
    with world.registry() as registry:
        entry = registry.audit_entries(limit=1)[0]
        assert (entry.action, entry.details) == (
            "model.digest_lift",
            {"model_digest": digest, "reason": "false alarm"},
        )
        ref, _ = registry.approve(again, new_version, reviewer="tester")
        assert ref.status == "approved"
        assert registry.audit_verify().ok


def test_a_copy_approved_before_the_revocation_is_withdrawn_with_it(
    own_world: World, real_specialists: tuple[SiteBundle, ...], tmp_path: Path
) -> None:
    world, specialist = own_world, real_specialists[0]
    task = world.new_task()
    name, version = publish_real(world, task, specialist)
    copy, copy_version = publish_real(world, task, specialist, site="real-2")  # same weights, approved
    pool = SpecialistPool(RegistrySource(world.config), BundleCache(tmp_path / "cache"))
    pool.watch([task])
    assert sorted(pool.snapshot(task).keys) == sorted([f"{name}/{version}", f"{copy}/{copy_version}"])
    world.revoke(name, version)
    with world.registry() as registry:
        bundle = registry.download_bundle(copy, copy_version, tmp_path / "copy")
        with pytest.raises(SignatureError, match="its model.onnx was revoked by the central team"):
            verify_approved(bundle, registry.trust_store())
    pool.refresh()  # the hub drops both: the revoked version and the copy it was serving
    assert pool.status().tasks[task] == []


def test_lifting_a_digest_that_is_not_revoked_is_refused(world: World) -> None:
    home = ["--home", str(world.config.home)]
    result = runner.invoke(app, [*home, "lift-revocation", "sha256:" + "0" * 64, "--reason", "x"])
    assert result.exit_code == 7
    assert "is not revoked" in result.stderr
