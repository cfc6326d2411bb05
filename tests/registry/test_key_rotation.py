"""Site signing-key rotation with real keys and signatures: `gsco-registry sites rotate|keys|revoke-key`.

A rotated site publishes only with its new key; bundles its old key signed stay approved and
served until the central team revokes that key; the audit log re-derives the retired keys.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from gsco_common.errors import AuthError, RegistryError, SignatureError
from registry.config import RegistryConfig
from registry.service import PublishResult, Registry
from registry.store.database import Tables
from registry.trust import verify_approved
from tests.registry.bundles import make_bundle
from tests.registry.cli_home import cli, init_home
from tests.registry.conftest import LABELS, SiteKey, make_site_key

SITE = "site-r"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SiteKey]:
    folder = tmp_path_factory.mktemp("rotation-keys")
    return {name: make_site_key(folder, name) for name in ("old", "new")}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, SiteKey]) -> Path:
    return init_home(tmp_path_factory.mktemp("rotation-home"), {SITE: keys["old"].public_path})


@pytest.fixture(scope="module")
def registry(home: Path) -> Iterator[Registry]:
    with Registry.open(RegistryConfig.resolve(home=home)) as opened:
        yield opened


def publish(registry: Registry, key: SiteKey, folder: Path, backbone: str) -> PublishResult:
    return registry.publish(make_bundle(folder, key.private, LABELS, backbone=backbone))


def _verify_all(home: Path) -> dict:
    return json.loads(cli(home, "verify", "--all", "--json").stdout)


def test_rotation_keeps_old_bundles_until_the_old_key_is_revoked(
    home: Path, registry: Registry, keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    served_old = publish(registry, keys["old"], tmp_path / "served", "old-net")
    registry.approve(served_old.name, served_old.version, reviewer="dr-x")
    pending_old = publish(registry, keys["old"], tmp_path / "pending", "pending-net")

    rotated = cli(home, "sites", "rotate", SITE, "--public-key", str(keys["new"].public_path), "--json")
    assert rotated.exit_code == 0, rotated.output
    fps = json.loads(rotated.stdout)
    old_fp, new_fp = fps["retired_fingerprint"], fps["fingerprint"]
    assert fps["name"] == SITE and fps["status"] == "active" and old_fp != new_fp

    # The old key's approved bundle still verifies, at the registry and for a hub.
    assert cli(home, "verify", served_old.name, served_old.version).exit_code == 0
    old_bundle = registry.download_bundle(served_old.name, served_old.version, tmp_path / "dl-old")
    assert verify_approved(old_bundle, registry.trust_store()).site_fingerprint == old_fp
    # Nothing new with the old key: neither a publish nor an approval of a pending bundle.
    with pytest.raises(AuthError, match="replaced by a new key"):
        publish(registry, keys["old"], tmp_path / "late", "late-net")
    refused = cli(home, "approve", pending_old.name, pending_old.version, "--reviewer", "dr-x")
    assert refused.exit_code == 10 and "site_key_active: the signing key was replaced" in refused.stderr
    # The new key publishes and gets approved.
    served_new = publish(registry, keys["new"], tmp_path / "fresh", "new-net")
    registry.approve(served_new.name, served_new.version, reviewer="dr-x")
    new_bundle = registry.download_bundle(served_new.name, served_new.version, tmp_path / "dl-new")
    assert verify_approved(new_bundle, registry.trust_store()).site_fingerprint == new_fp

    listed = json.loads(cli(home, "sites", "keys", "--json").stdout)
    assert listed == [
        {"name": SITE, "key": "current", "status": "active", "fingerprint": new_fp},
        {"name": SITE, "key": "retired", "status": "retired", "fingerprint": old_fp},
    ]
    assert _verify_all(home) == {"ok": True, "problems": []}

    # The current key is not revoked this way; the retired one is, once.
    wrong = cli(home, "sites", "revoke-key", SITE, new_fp)
    assert wrong.exit_code == 7 and "that is the site's current key" in wrong.stderr
    revoked = cli(home, "sites", "revoke-key", SITE, old_fp, "--reason", "old laptop retired")
    assert revoked.exit_code == 0, revoked.output
    again = cli(home, "sites", "revoke-key", SITE, old_fp)
    assert again.exit_code == 7 and "already revoked" in again.stderr
    with pytest.raises(SignatureError, match="not enrolled or was revoked"):
        verify_approved(old_bundle, registry.trust_store())
    assert cli(home, "verify", served_old.name, served_old.version).exit_code == 6
    assert verify_approved(new_bundle, registry.trust_store()).site_fingerprint == new_fp
    assert _verify_all(home) == {"ok": True, "problems": []}
    actions = [e["action"] for e in json.loads(cli(home, "audit", "show", "--json").stdout)]
    assert actions.count("site.rotate") == 1 and actions.count("site.key_revoke") == 1

    # A model of the new key is still revoked as any model is.
    assert cli(home, "revoke", served_new.name, served_new.version, "--reason", "x", "--reviewer", "dr-x")
    with pytest.raises(SignatureError, match="revoked by the central team"):
        verify_approved(new_bundle, registry.trust_store())


def test_keys_are_never_reused_and_unknown_sites_are_refused(
    home: Path, registry: Registry, keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    reuse = cli(home, "sites", "rotate", SITE, "--public-key", str(keys["new"].public_path))
    assert reuse.exit_code == 7 and f"already enrolled as site '{SITE}'" in reuse.stderr
    with pytest.raises(RegistryError, match=f"was an earlier key of site '{SITE}'"):
        registry.enroll_site("site-other", keys["old"].public_pem)
    unknown = cli(home, "sites", "rotate", "site-nobody", "--public-key", str(keys["new"].public_path))
    assert unknown.exit_code == 7 and "unknown site" in unknown.stderr
    missing = cli(home, "sites", "rotate", SITE, "--public-key", str(tmp_path / "absent.pub"))
    assert missing.exit_code == 5
    third = make_site_key(tmp_path, "third")
    registry.enroll_site("site-gone", third.public_pem)
    registry.revoke_site("site-gone")
    fourth = make_site_key(tmp_path, "fourth")
    gone = cli(home, "sites", "rotate", "site-gone", "--public-key", str(fourth.public_path))
    assert gone.exit_code == 7 and "site 'site-gone' is revoked" in gone.stderr


def test_an_unrevoked_key_by_sql_is_found_by_verify_all(home: Path, registry: Registry) -> None:
    revoked = text("SELECT count(*) FROM gsco_site_retired_keys WHERE status = 'revoked'")
    with registry.tables.engine.connect() as conn:  # the key the rotation test of this module revoked
        assert conn.execute(revoked).scalar() == 1, "run this module's tests in order (--dist loadfile)"
    with registry.tables.engine.begin() as conn:
        conn.execute(text("UPDATE gsco_site_retired_keys SET status = 'retired'"))
    try:
        report = _verify_all(home)
        assert report["ok"] is False
        assert [p for p in report["problems"] if "retired keys table differs" in p] != []
    finally:
        with registry.tables.engine.begin() as conn:
            conn.execute(text("UPDATE gsco_site_retired_keys SET status = 'revoked'"))
    assert _verify_all(home)["ok"] is True


def test_init_upgrades_a_version_1_registry(tmp_path: Path) -> None:
    home = tmp_path / "v1"
    assert cli(home, "init").exit_code == 0
    db = home / "registry.db"
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE gsco_site_retired_keys")
        conn.execute("UPDATE gsco_schema_version SET version = 1")
    old = cli(home, "sites", "list")
    assert old.exit_code == 7 and "schema version 1, this software needs 2" in old.stderr
    assert "gsco-registry init" in old.stderr
    assert cli(home, "init").exit_code == 0
    assert cli(home, "sites", "keys", "--json").exit_code == 0
    tables = Tables(f"sqlite:///{db}")
    with tables.engine.connect() as conn:
        assert conn.execute(text("SELECT max(version) FROM gsco_schema_version")).scalar() == 2
    tables.dispose()
