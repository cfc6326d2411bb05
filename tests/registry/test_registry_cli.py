"""`gsco-registry` on the embedded registry: every command, its happy path and its refusals.

One registry home per module (MLflow's first initialisation costs seconds); each test publishes
its own bundles under its own backbone name, so tests do not depend on each other's versions.
"""

from __future__ import annotations

import json
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import Result

from gsco_common.errors import AuthError, RegistryError, RegistryUnavailableError, SignatureError
from registry.bundle.card import Card
from registry.cli.main import app
from registry.config import RegistryConfig
from registry.service import PublishResult, Registry
from registry.trust import TrustStore, verify_approved
from tests.registry.bundles import make_bundle, tiny_onnx
from tests.registry.cli_home import cli, init_home, runner
from tests.registry.conftest import LABELS, SiteKey
from tests.unavailable_server import unavailable_server


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, site_keys: dict[str, SiteKey]) -> Path:
    folder = tmp_path_factory.mktemp("registry-home")
    return init_home(folder, {"site-a": site_keys["a"].public_path, "site-b": site_keys["b"].public_path})


@pytest.fixture(scope="module")
def registry(home: Path) -> Iterator[Registry]:
    with Registry.open(RegistryConfig.resolve(home=home)) as opened:
        yield opened


def publish(registry: Registry, key: SiteKey, folder: Path, backbone: str, **card: object) -> PublishResult:
    return registry.publish(make_bundle(folder, key.private, LABELS, backbone=backbone, **card))


def test_init_is_idempotent_and_keeps_the_key(home: Path) -> None:
    again = cli(home, "init", "--json")
    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout)
    assert data["approval_key_created"] is False
    assert data["approval_key_fingerprint"].startswith("sha256:")
    assert stat.S_IMODE((home / "keys" / "approval.key").stat().st_mode) == 0o600
    assert (home / "registry.db").is_file() and (home / "artifacts").is_dir()


def test_commands_refuse_a_home_without_registry(tmp_path: Path) -> None:
    result = cli(tmp_path, "models", "list")
    assert result.exit_code == 7
    assert "error[GSCO-500]" in result.stderr and "gsco-registry init" in result.stderr


def test_tasks_create_list_and_refusals(home: Path) -> None:
    listed = json.loads(cli(home, "tasks", "list", "--json").stdout)
    assert listed == [{"task": "pneumonia", "labels": LABELS, "modality": "chest X-ray"}]
    duplicate = cli(home, "tasks", "create", "pneumonia", "--labels", "a,b", "--modality", "x")
    assert duplicate.exit_code == 7 and "already exists" in duplicate.stderr
    one_label = cli(home, "tasks", "create", "other", "--labels", "a", "--modality", "x")
    assert one_label.exit_code == 7 and "two distinct labels" in one_label.stderr


def test_sites_enroll_list_revoke_and_refusals(
    home: Path, site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    sites = {s["name"]: s for s in json.loads(cli(home, "sites", "list", "--json").stdout)}
    assert sites["site-a"]["status"] == "active" and sites["site-a"]["fingerprint"].startswith("sha256:")
    duplicate_key = cli(home, "sites", "enroll", "site-c", "--public-key", str(site_keys["a"].public_path))
    assert duplicate_key.exit_code == 7 and "already enrolled as site 'site-a'" in duplicate_key.stderr
    (tmp_path / "junk.pub").write_text("junk")
    junk = cli(home, "sites", "enroll", "site-c", "--public-key", str(tmp_path / "junk.pub"))
    assert junk.exit_code == 5 and "error[GSCO-400]" in junk.stderr
    missing = cli(home, "sites", "enroll", "site-c", "--public-key", str(tmp_path / "absent.pub"))
    assert missing.exit_code == 5
    assert cli(home, "sites", "revoke", "site-unknown").exit_code == 7


def test_publish_refusals(registry: Registry, site_keys: dict[str, SiteKey], tmp_path: Path) -> None:
    a = site_keys["a"].private
    with pytest.raises(RegistryError, match="unknown task 'ct-brain'"):
        registry.publish(make_bundle(tmp_path / "task", a, LABELS, task="ct-brain"))
    with pytest.raises(RegistryError, match="differ from task 'pneumonia'"):
        registry.publish(make_bundle(tmp_path / "order", a, list(reversed(LABELS))))
    with pytest.raises(AuthError, match="not enrolled"):
        registry.publish(make_bundle(tmp_path / "stranger", site_keys["stranger"].private, LABELS))
    tampered = make_bundle(tmp_path / "tampered", a, LABELS)
    (tampered / "card.json").write_text(
        (tampered / "card.json").read_text().replace("Single-site", "Multi-site")
    )
    with pytest.raises(SignatureError, match="changed: card.json"):
        registry.publish(tampered)
    unsigned = make_bundle(tmp_path / "unsigned", a, LABELS, sign=False)
    with pytest.raises(RegistryError, match="missing site.sig"):
        registry.publish(unsigned)
    assert [r for r in registry.versions() if r.backbone == "tinynet"] == []


def test_publish_is_idempotent_by_bundle_digest(
    registry: Registry, site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    first = publish(registry, site_keys["a"], tmp_path / "one", "idem-net")
    again = registry.publish(tmp_path / "one")
    assert (again.name, again.version, again.created) == (first.name, first.version, False)
    second = publish(registry, site_keys["a"], tmp_path / "two", "idem-net", uid="1" * 32)
    assert (second.name, second.version, second.created) == ("pneumonia.idem-net.site-a", "2", True)
    assert len(registry.versions(task="pneumonia")) >= 2


def test_models_list_and_show(
    home: Path, registry: Registry, site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    published = publish(registry, site_keys["b"], tmp_path / "b", "show-net")
    listed = json.loads(cli(home, "models", "list", "--status", "pending", "--json").stdout)
    row = next(r for r in listed if r["name"] == published.name)
    assert row["status"] == "pending" and row["source"] == "site-b" and row["metrics"]["auc"] == 0.9
    assert cli(home, "models", "list").exit_code == 0
    assert cli(home, "models", "list", "--status", "bogus").exit_code == 7
    shown = json.loads(cli(home, "models", "show", published.name, published.version, "--json").stdout)
    assert shown["card"]["task"]["labels"] == LABELS and shown["decisions"] == []
    assert cli(home, "models", "show", published.name, "99").exit_code == 7


def test_approve_refuses_and_lists_every_failing_check(
    home: Path, registry: Registry, site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    model = tiny_onnx(2)
    model.doc_string = "exported by /home/drsmith/train.py"
    bad = make_bundle(
        tmp_path / "bad",
        site_keys["a"].private,
        LABELS,
        model=model,
        backbone="bad-net",
        auc=0.55,
        embedding=5,
    )
    published = registry.publish(bad)
    result = cli(home, "approve", published.name, published.version, "--reviewer", "dr-who")
    assert result.exit_code == 10, result.output
    assert "error[GSCO-530]" in result.stderr and "3 approval check(s)" in result.stderr
    for check in ("onnxruntime_load", "anonymization", "metric_floor"):
        assert f"  - {check}:" in result.stderr
    assert registry.version(published.name, published.version).status == "pending"
    assert registry.audit_entries(limit=1)[0].action == "model.approve_refused"


def test_policy_file_overrides_defaults(
    home: Path, registry: Registry, site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    published = publish(registry, site_keys["a"], tmp_path / "weak", "weak-net", auc=0.6)
    approve = ("approve", published.name, published.version, "--reviewer", "dr-x")
    refused = cli(home, *approve)
    assert refused.exit_code == 10 and "metric_floor: auc 0.600 < 0.7" in refused.stderr
    (tmp_path / "unknown.yaml").write_text("checks:\n  site_signature: false\nmetric_flor: {}\n")
    typo = cli(home, *approve, "--policy", str(tmp_path / "unknown.yaml"))
    assert typo.exit_code == 2 and "unknown key metric_flor" in typo.stderr
    (tmp_path / "lenient.yaml").write_text("metric_floor:\n  auc: 0.5\n")
    lenient = cli(home, *approve, "--policy", str(tmp_path / "lenient.yaml"), "--json")
    assert lenient.exit_code == 0, lenient.output
    assert {c["check"]: c["status"] for c in json.loads(lenient.stdout)["checks"]}["metric_floor"] == "pass"


def test_approve_signs_sets_alias_and_verify_accepts(
    home: Path, registry: Registry, site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    published = publish(registry, site_keys["a"], tmp_path / "good", "good-net")
    before = cli(home, "verify", published.name, published.version, "--json")
    assert before.exit_code == 6 and json.loads(before.stdout)["approved"] is False
    approved = cli(home, "approve", published.name, published.version, "--reviewer", "dr-x", "--note", "ok")
    assert approved.exit_code == 0, approved.output
    verified = cli(home, "verify", published.name, published.version)
    assert verified.exit_code == 0 and "APPROVED" in verified.stdout
    ref = registry.version(published.name, published.version)
    assert ref.status == "approved" and ref.has_approved_alias
    assert published.name in [r.name for r in registry.list_approved("pneumonia")]
    bundle = registry.download_bundle(published.name, published.version, tmp_path / "download")
    assert sorted(p.name for p in bundle.iterdir()) == ["approval.sig", "card.json", "model.onnx", "site.sig"]
    checked = verify_approved(bundle, registry.trust_store())
    assert checked.card.backbone == "good-net" and checked.digest == ref.bundle_digest
    again = cli(home, "approve", published.name, published.version, "--reviewer", "dr-x")
    assert again.exit_code == 7 and "only pending" in again.stderr


def test_an_alias_set_through_plain_mlflow_is_not_approval(
    home: Path, registry: Registry, site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    published = publish(registry, site_keys["a"], tmp_path / "sneaky", "sneaky-net")
    uri = f"sqlite:///{home / 'registry.db'}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(
        published.name, "approved", published.version
    )
    result = cli(home, "verify", published.name, published.version, "--json")
    assert result.exit_code == 6
    report = json.loads(result.stdout)
    assert report["approved"] is False and report["aliases"] == ["approved"]
    assert report["checks"]["approval_signature"] == "missing approval.sig"
    assert published.name not in [r.name for r in registry.list_approved("pneumonia")]
    bundle = registry.download_bundle(published.name, published.version, tmp_path / "download")
    with pytest.raises(SignatureError, match="no approval.sig"):
        verify_approved(bundle, registry.trust_store())


def test_a_plain_mlflow_client_lists_versions_tags_and_alias(
    home: Path, registry: Registry, site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    published = publish(registry, site_keys["b"], tmp_path / "plain", "plain-net")
    registry.approve(published.name, published.version, reviewer="dr-x")
    uri = f"sqlite:///{home / 'registry.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = client.search_model_versions(f"name='{published.name}'")
    assert [v.version for v in versions] == [1]
    tags = versions[0].tags
    assert tags["task"] == "pneumonia" and tags["backbone"] == "plain-net" and tags["status"] == "approved"
    assert tags["site_fingerprint"].startswith("sha256:") and float(tags["metric.auc"]) == pytest.approx(0.9)
    assert str(client.get_model_version_by_alias(published.name, "approved").version) == "1"


@pytest.mark.filterwarnings("ignore::getpass.GetPassWarning")
def test_reject_and_revoke(
    home: Path, registry: Registry, site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    rejected = publish(registry, site_keys["a"], tmp_path / "r", "reject-net")
    assert cli(home, "reject", rejected.name, rejected.version, "--reason", "poor calibration").exit_code == 0
    assert registry.version(rejected.name, rejected.version).status == "rejected"
    assert cli(home, "approve", rejected.name, rejected.version, "--reviewer", "x").exit_code == 7
    assert cli(home, "reject", rejected.name, rejected.version, "--reason", "again").exit_code == 7
    not_approved = cli(home, "promote", rejected.name, rejected.version, "--reason", "back")
    assert not_approved.exit_code == 7 and "only approved versions can be promoted" in not_approved.stderr

    # its own model.onnx: revoking it revokes that content for every later test in this home
    served = publish(registry, site_keys["a"], tmp_path / "s", "revoke-net", model=tiny_onnx(2, seed=41))
    registry.approve(served.name, served.version, reviewer="dr-x")
    bundle = registry.download_bundle(served.name, served.version, tmp_path / "cached")
    verify_approved(bundle, registry.trust_store())
    # without a passphrase and without a terminal to ask on (systemd, </dev/null): one line, no change
    no_key = runner.invoke(
        app,
        ["--home", str(home), "revoke", served.name, served.version, "--reason", "drift"],
        env={"GSCO_KEY_PASSPHRASE": None},
        input="",
    )
    assert no_key.exit_code == 5 and "error[GSCO-400]: no key passphrase" in no_key.stderr
    assert registry.decisions(served.name, served.version) == ["approved"]
    verify_approved(bundle, registry.trust_store())
    revoked = cli(home, "revoke", served.name, served.version, "--reason", "drift", "--json")
    assert revoked.exit_code == 0 and json.loads(revoked.stdout)["status"] == "revoked"
    ref = registry.version(served.name, served.version)
    assert not ref.has_approved_alias and served.name not in [
        r.name for r in registry.list_approved("pneumonia")
    ]
    with pytest.raises(SignatureError, match="revoked"):
        verify_approved(bundle, registry.trust_store())
    assert cli(home, "verify", served.name, served.version).exit_code == 6
    assert cli(home, "revoke", served.name, served.version, "--reason", "again").exit_code == 7
    assert registry.decisions(served.name, served.version) == ["approved", "revoked"]


def test_revoking_a_site_blocks_publish_approval_and_serving(
    home: Path, registry: Registry, site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    pending = publish(registry, site_keys["b"], tmp_path / "p", "late-net")
    served = publish(registry, site_keys["b"], tmp_path / "q", "served-net")
    registry.approve(served.name, served.version, reviewer="dr-x")
    bundle = registry.download_bundle(served.name, served.version, tmp_path / "cached")
    assert cli(home, "sites", "revoke", "site-b", "--reason", "key leaked").exit_code == 0
    with pytest.raises(AuthError, match="revoked"):
        publish(registry, site_keys["b"], tmp_path / "r", "late-net", uid="2" * 32)
    refused = cli(home, "approve", pending.name, pending.version, "--reviewer", "dr-x")
    assert refused.exit_code == 10 and "site_key_active: site 'site-b' is revoked" in refused.stderr
    with pytest.raises(SignatureError, match="not enrolled or was revoked"):
        verify_approved(bundle, registry.trust_store())


def test_trust_export_for_hubs(home: Path, registry: Registry, tmp_path: Path) -> None:
    result = cli(home, "trust", "export", str(tmp_path / "trust.json"))
    assert result.exit_code == 0, result.output
    store = TrustStore.read(tmp_path / "trust.json")
    assert (
        store.central_fingerprint
        == json.loads(cli(home, "init", "--json").stdout)["approval_key_fingerprint"]
    )
    sites = registry.sites()
    active = {s.fingerprint for s in sites if s.active}
    assert active and set(store.site_keys) == active  # every active key, and nothing else
    assert not set(store.site_keys) & {s.fingerprint for s in sites if not s.active}


def test_audit_show_verify_and_tampering(
    home: Path, registry: Registry, site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    before = json.loads(cli(home, "audit", "show", "--json").stdout)
    assert [entry["action"] for entry in before[:4]] == [
        "registry.init",
        "task.create",
        "site.enroll",
        "site.enroll",
    ]
    # site a: an earlier test in this module revokes site b
    published = publish(registry, site_keys["a"], tmp_path / "audited", "audited-net")
    assert cli(home, "reject", published.name, published.version, "--reason", "audit test").exit_code == 0
    shown = json.loads(cli(home, "audit", "show", "--json").stdout)
    added = shown[len(before) :]
    assert [entry["action"] for entry in added] == ["model.publish", "model.reject"]
    assert all(published.name in json.dumps(entry) for entry in added)
    last_two = json.loads(cli(home, "audit", "show", "--limit", "2", "--json").stdout)
    assert [entry["seq"] for entry in last_two] == [entry["seq"] for entry in added]
    intact = json.loads(cli(home, "audit", "verify", "--json").stdout)
    assert intact["ok"] and intact["entries"] == len(shown)
    with sqlite3.connect(home / "registry.db") as conn:
        original = conn.execute("SELECT details FROM gsco_audit WHERE seq = 3").fetchone()[0]
        conn.execute("UPDATE gsco_audit SET details = '{}' WHERE seq = 3")
    try:
        broken = cli(home, "audit", "verify")
        assert broken.exit_code == 13 and "broken at entry 3" in broken.stderr
    finally:
        with sqlite3.connect(home / "registry.db") as conn:
            conn.execute("UPDATE gsco_audit SET details = ? WHERE seq = 3", (original,))
    assert cli(home, "audit", "verify").exit_code == 0


def test_publish_retries_then_reports_an_unreachable_registry(
    home: Path, site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS, backbone="offline-net")
    with unavailable_server() as server:
        config = RegistryConfig.resolve(
            home=home,
            tracking_uri=server.url,
            db_uri=f"sqlite:///{home / 'registry.db'}",
            retries=2,
            backoff_s=0.01,
        )
        with (
            Registry.open(config) as offline,
            pytest.raises(RegistryUnavailableError, match="gave up after 3 attempts"),
        ):
            offline.publish(bundle)
    # Three attempts reached the server, each stopped at its first refused request.
    assert len(server.received) == 3 and len(set(server.received)) == 1
    down = RegistryConfig.resolve(
        home=home, db_uri="postgresql+psycopg2://postgres@127.0.0.1:9/x", retries=1, backoff_s=0.01
    )
    with pytest.raises(RegistryUnavailableError, match="gave up after 2 attempts"):
        Registry.open(down)
    server_without_db = cli(home, "--tracking-uri", "http://127.0.0.1:9", "models", "list")
    assert server_without_db.exit_code == 2 and "registry.db_uri is required" in server_without_db.stderr


def _strict(home: Path, published: PublishResult) -> Result:
    return cli(
        home, "approve", published.name, published.version, "--reviewer", "dr-p", "--policy", "strict.yaml"
    )


DP = {"notion": "sample-level (DP-SGD at the site)", "epsilon": 3.0, "delta": 1e-5, "accountant": "rdp"}


def test_strict_policy_refuses_an_overfit_model_naming_figure_and_limit(
    home: Path, registry: Registry, site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    refused = _strict(
        home, publish(registry, site_keys["a"], tmp_path / "overfit", "overfit-net", mia_auc=0.95)
    )
    assert refused.exit_code == 10, refused.output
    line = "privacy: membership-inference AUC 0.950 > 0.6 (privacy.max_mia_auc)"
    assert line in refused.stderr
    entry = registry.audit_entries(limit=1)[0]
    assert entry.action == "model.approve_refused" and entry.details["problems"] == [line]


def test_strict_policy_checks_epsilon_at_its_delta_and_passes_a_private_model(
    home: Path, registry: Registry, site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    loose = publish(
        registry, site_keys["a"], tmp_path / "loose", "loose-net", privacy={**DP, "epsilon": 20.0}
    )
    assert "privacy: DP epsilon 20 > 10 (privacy.max_epsilon)" in _strict(home, loose).stderr
    wide = publish(registry, site_keys["a"], tmp_path / "wide", "wide-net", privacy={**DP, "delta": 1e-3})
    assert "privacy: DP delta 0.001 > 1e-05 (privacy.delta)" in _strict(home, wide).stderr
    private = publish(registry, site_keys["a"], tmp_path / "private", "private-net", privacy=DP)
    approved = _strict(home, private)
    assert approved.exit_code == 0, approved.output
    (tmp_path / "dp.yaml").write_text("checks: {privacy: true}\nprivacy: {dp_required: true}\n")
    plain = publish(registry, site_keys["a"], tmp_path / "plain", "plain-dp-net")
    required = cli(
        home, "approve", plain.name, plain.version, "--reviewer", "x", "--policy", str(tmp_path / "dp.yaml")
    )
    assert "privacy: trained without differential privacy (privacy.dp_required)" in required.stderr
    default = cli(home, "approve", plain.name, plain.version, "--reviewer", "x", "--json")
    assert {c["check"]: c["status"] for c in json.loads(default.stdout)["checks"]}["privacy"] == "skipped"


def test_privacy_tags_on_the_mlflow_version_equal_the_card(
    home: Path, registry: Registry, site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    uri = f"sqlite:///{home / 'registry.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    privacy = {**DP, "epsilon": 2.718281828459045, "delta": 3e-6}
    for backbone, card in (("tagged-dp-net", {"privacy": privacy, "mia_auc": 0.5312}), ("tagged-net", {})):
        published = publish(registry, site_keys["a"], tmp_path / backbone, backbone, **card)
        stored = Card.read(
            registry.models.download(registry.version(published.name, "1"), tmp_path / "dl" / backbone)
        )
        tags = client.get_model_version(published.name, "1").tags
        expected = stored.privacy or {}
        assert tags["privacy.notion"] == expected.get("notion", "none")
        assert (float(tags["privacy.mia_auc"])) == stored.membership_inference_auc
        for key in ("epsilon", "delta"):
            assert (float(tags[f"privacy.{key}"]) if tags[f"privacy.{key}"] else None) == expected.get(key)
    assert float(tags["privacy.mia_auc"]) == 0.52 and tags["privacy.epsilon"] == ""
