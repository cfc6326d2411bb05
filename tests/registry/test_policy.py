"""Each approval check fails on its own defect; the policy file merges over the defaults."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from onnx import helper

from gsco_common.errors import ConfigError
from gsco_common.keys import fingerprint
from registry.bundle.signing import sign_bundle
from registry.policy.checks import BundleUnderReview, run_checks
from registry.policy.policy import load_policy
from registry.store.catalog import SiteInfo, TaskInfo
from tests.registry.bundles import make_bundle, tiny_onnx
from tests.registry.conftest import LABELS, SiteKey

TASK = TaskInfo("pneumonia", tuple(LABELS), "chest X-ray")


def site_info(key: SiteKey, status: str = "active") -> SiteInfo:
    return SiteInfo("site-a", fingerprint(key.private.public_key()), status, key.public_pem.decode())


def failing(
    folder: Path, key: SiteKey, *, status: str = "active", policy_file: Path | None = None
) -> dict[str, str]:
    results = run_checks(BundleUnderReview(folder, TASK, site_info(key, status)), load_policy(policy_file))
    return {r.name: r.detail for r in results if r.failed}


def test_a_good_bundle_passes_every_check(tmp_path: Path, site_keys: dict[str, SiteKey]) -> None:
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS)
    assert failing(folder, site_keys["a"]) == {}


def test_tampered_card_fails_signature_and_completeness(
    tmp_path: Path, site_keys: dict[str, SiteKey]
) -> None:
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS)
    card = json.loads((folder / "card.json").read_text())
    card["task"]["labels"] = ["normal", "covid"]
    card["evaluation"]["per_class"][1]["label"] = "covid"
    for counts in card["data"]["class_counts"].values():
        counts["covid"] = counts.pop("pneumonia")
    (folder / "card.json").write_text(json.dumps(card))
    failures = failing(folder, site_keys["a"])
    assert "changed: card.json" in failures["site_signature"]
    assert "labels differ" in failures["card_complete"]


def test_a_broken_card_fails_the_checks_that_need_it(tmp_path: Path, site_keys: dict[str, SiteKey]) -> None:
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS, card_data={"format_version": "1.0"})
    failures = failing(folder, site_keys["a"])
    assert {"card_complete", "onnxruntime_load", "metric_floor"} <= failures.keys()
    assert "card.json is invalid" in failures["card_complete"]


def test_key_of_another_site_and_revoked_key(tmp_path: Path, site_keys: dict[str, SiteKey]) -> None:
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS)
    assert "different key" in failing(folder, site_keys["b"])["site_signature"]
    assert failing(folder, site_keys["a"], status="revoked") == {
        "site_key_active": "site 'site-a' is revoked"
    }
    review = BundleUnderReview(folder, TASK, None)
    failures = {r.name for r in run_checks(review, load_policy()) if r.failed}
    assert failures == {"site_signature", "site_key_active"}


def test_invalid_onnx_fails_checker_and_runtime(tmp_path: Path, site_keys: dict[str, SiteKey]) -> None:
    model = tiny_onnx(2)
    model.graph.node.append(helper.make_node("Relu", ["does_not_exist"], ["dangling"]))
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS, model=model)
    failures = failing(folder, site_keys["a"])
    assert failures.keys() >= {"onnx_checker", "onnxruntime_load"}
    garbage = make_bundle(tmp_path / "g", site_keys["a"].private, LABELS, sign=False)
    (garbage / "model.onnx").write_bytes(b"\x08\xff\xff not a protobuf")
    sign_bundle(garbage, site_keys["a"].private, garbage / "site.sig")
    assert failing(garbage, site_keys["a"]).keys() == {"onnx_checker", "onnxruntime_load", "anonymization"}


def test_anonymization_rescan_finds_leftovers_paths_and_denied_words(
    tmp_path: Path, site_keys: dict[str, SiteKey]
) -> None:
    model = tiny_onnx(2)
    model.graph.node[0].name = "/backbone/stem/Flatten"
    onnx.helper.set_model_props(model, {"source": "C:\\Users\\drsmith\\train.py"})
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS, model=model)
    detail = failing(folder, site_keys["a"])["anonymization"]
    assert "free text" in detail and "metadata_props" in detail and "node[0].name" in detail
    (tmp_path / "deny.yaml").write_text("deny_list: [Research decision]\n")
    clean = make_bundle(tmp_path / "c", site_keys["a"].private, LABELS)
    denied = failing(clean, site_keys["a"], policy_file=tmp_path / "deny.yaml")["anonymization"]
    assert "deny-listed strings in card.task.intended_use" in denied


def test_metric_floor_names_each_low_metric(tmp_path: Path, site_keys: dict[str, SiteKey]) -> None:
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS, auc=0.65, balanced_accuracy=0.5)
    assert failing(folder, site_keys["a"])["metric_floor"] == "balanced_accuracy 0.500 < 0.6, auc 0.650 < 0.7"


def test_disabled_checks_are_reported_as_skipped(tmp_path: Path, site_keys: dict[str, SiteKey]) -> None:
    (tmp_path / "p.yaml").write_text("checks:\n  metric_floor: false\n")
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS, auc=0.1)
    results = run_checks(
        BundleUnderReview(folder, TASK, site_info(site_keys["a"])), load_policy(tmp_path / "p.yaml")
    )
    assert {r.name: r.status for r in results}["metric_floor"] == "skipped"
    assert load_policy(tmp_path / "p.yaml").enabled("site_signature")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("checks:\n  site_signatur: false\n", "checks.site_signatur"),
        ("metric_floor:\n  auc: high\n", "metric_floor.auc"),
        ("- a list\n", "must be a mapping"),
        ("checks: [\n", "not valid YAML"),
        ("privacy:\n  max_mia_auc: 0.3\n", "privacy.max_mia_auc"),
        ("privacy:\n  max_epsilon: 8\n  delta: null\n", "privacy.max_epsilon needs privacy.delta"),
    ],
)
def test_bad_policy_files_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_policy(tmp_path / "p.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_policy(tmp_path / "absent.yaml")


DP = {"notion": "sample-level (DP-SGD at the site)", "epsilon": 3.0, "delta": 1e-5, "accountant": "rdp"}
BOTH = {
    **DP,
    "notion": "both",
    "update_level": {"epsilon": 2.95, "delta": 1e-6, "accountant": "rdp", "noise_multiplier": 1.0},
}


def _privacy_detail(tmp_path: Path, key: SiteKey, limits: str, **card: object) -> str:
    (tmp_path / "p.yaml").write_text(f"checks: {{privacy: true}}\nprivacy: {limits}\n")
    folder = make_bundle(tmp_path / "b", key.private, LABELS, **card)
    return failing(folder, key, policy_file=tmp_path / "p.yaml").get("privacy", "")


@pytest.mark.parametrize(
    ("limits", "card", "detail"),
    [
        ("{max_mia_auc: 0.6}", {"mia_auc": 0.6}, ""),
        (
            "{max_mia_auc: 0.6}",
            {"mia_auc": 0.61},
            "membership-inference AUC 0.610 > 0.6 (privacy.max_mia_auc)",
        ),
        ("{max_mia_auc: 0.6}", {"mia_auc": None}, "membership-inference AUC n/a > 0.6 (privacy.max_mia_auc)"),
        ("{dp_required: true}", {}, "trained without differential privacy (privacy.dp_required)"),
        ("{dp_required: true}", {"privacy": DP}, ""),
        ("{max_epsilon: 3, delta: 1.0e-5}", {"privacy": DP}, ""),
        ("{max_epsilon: 3, delta: 1.0e-5}", {}, ""),
        (
            "{max_epsilon: 2.5, delta: 1.0e-6}",
            {"privacy": DP},
            "DP epsilon 3 > 2.5 (privacy.max_epsilon); DP delta 1e-05 > 1e-06 (privacy.delta)",
        ),
        ("{max_epsilon: 3, delta: 1.0e-5}", {"privacy": BOTH}, ""),
        (
            "{max_epsilon: 2.9, delta: 1.0e-5}",
            {"privacy": {**BOTH, "epsilon": 2.0}},
            "DP epsilon (update-level) 2.95 > 2.9 (privacy.max_epsilon)",
        ),
    ],
)
def test_privacy_limits_are_checked_at_their_boundaries(
    tmp_path: Path, site_keys: dict[str, SiteKey], limits: str, card: dict[str, object], detail: str
) -> None:
    assert _privacy_detail(tmp_path, site_keys["a"], limits, **card) == detail


def test_an_unenrolled_key_fails_both_signature_checks_by_name(
    tmp_path: Path, site_keys: dict[str, SiteKey]
) -> None:
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS)
    results = run_checks(BundleUnderReview(folder, TASK, None), load_policy())
    failed = {r.name: r.detail for r in results if r.failed}
    assert failed == {
        "site_signature": "no enrolled key to verify site.sig against",
        "site_key_active": "the signing key is not enrolled",
    }
    assert [r.to_dict() for r in results if r.failed][1] == {
        "check": "site_key_active",
        "status": "fail",
        "detail": "the signing key is not enrolled",
    }
    assert [r.line() for r in results][:2] == [
        "site_signature: no enrolled key to verify site.sig against",
        "site_key_active: the signing key is not enrolled",
    ]
    assert [r.line() for r in results][2] == "card_complete"


def test_a_model_whose_shapes_differ_from_its_card_is_refused(
    tmp_path: Path, site_keys: dict[str, SiteKey]
) -> None:
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS, model=tiny_onnx(3), embedding=4)
    assert (
        failing(folder, site_keys["a"])["onnxruntime_load"] == "logits has shape [2, 3], the card says [2, 2]"
    )
    wider = make_bundle(tmp_path / "w", site_keys["a"].private, LABELS, model=tiny_onnx(2, size=16))
    assert failing(wider, site_keys["a"])["onnxruntime_load"] == "expected one input `image` [batch,3,8,8]"
    renamed = tiny_onnx(2)
    renamed.graph.output[1].name = "features"
    renamed.graph.node[1].output[0] = "features"
    renamed.graph.node[2].input[0] = "features"
    odd = make_bundle(tmp_path / "o", site_keys["a"].private, LABELS, model=renamed)
    assert (
        failing(odd, site_keys["a"])["onnxruntime_load"]
        == "expected outputs logits, embedding; found logits, features"
    )


def test_the_card_of_another_task_is_named(tmp_path: Path, site_keys: dict[str, SiteKey]) -> None:
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS, task="breast")
    assert (
        failing(folder, site_keys["a"])["card_complete"]
        == "the card's task differs from the registry's task 'pneumonia'"
    )
