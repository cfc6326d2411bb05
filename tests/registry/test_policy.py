"""Each approval check fails on its own defect; the policy file merges over the defaults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, external_data_helper, helper

from gsco_common.errors import ConfigError
from gsco_common.keys import fingerprint
from registry.bundle.signing import sign_bundle
from registry.policy import policy as policy_module
from registry.policy.checks import _IDENTIFYING, BundleUnderReview, _identifying_fields, run_checks
from registry.policy.policy import Policy, PrivacyLimits, load_policy
from registry.store.catalog import SiteInfo, TaskInfo
from tests.registry.bundles import card_for, make_bundle, tiny_onnx
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
    assert failures["card_complete"] == (
        "the card's labels differ from the task's labels (names and order must match)"
    )


def test_a_broken_card_fails_the_checks_that_need_it(tmp_path: Path, site_keys: dict[str, SiteKey]) -> None:
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS, card_data={"format_version": "1.0"})
    failures = failing(folder, site_keys["a"])
    assert {"card_complete", "onnxruntime_load", "metric_floor"} <= failures.keys()
    assert "card.json is invalid" in failures["card_complete"]


def test_key_of_another_site_and_revoked_key(tmp_path: Path, site_keys: dict[str, SiteKey]) -> None:
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS)
    assert failing(folder, site_keys["b"]) == {
        "site_signature": "site.sig does not verify: signed with a different key"
    }
    # signed by site b, whose key is enrolled, but the card names site a's key
    named = make_bundle(tmp_path / "n", site_keys["a"].private, LABELS, sign=False)
    sign_bundle(named, site_keys["b"].private, named / "site.sig")
    assert failing(named, site_keys["b"]) == {
        "site_signature": "the card names a different key than the one that signed it"
    }
    assert failing(folder, site_keys["a"], status="revoked") == {
        "site_key_active": "site 'site-a' is revoked"
    }
    review = BundleUnderReview(folder, TASK, None)
    failures = {r.name for r in run_checks(review, load_policy()) if r.failed}
    assert failures == {"site_signature", "site_key_active"}


def test_invalid_onnx_fails_checker_and_runtime(tmp_path: Path, site_keys: dict[str, SiteKey]) -> None:
    model = tiny_onnx(2)
    model.graph.node.append(helper.make_node("Relu", ["does_not_exist" * 20], ["dangling"]))
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS, model=model)
    # the checker's message: its first line, cut at 200 characters
    first_line = "Nodes in a graph must be topologically sorted, however input '" + "does_not_exist" * 20
    assert failing(folder, site_keys["a"]) == {
        "onnx_checker": f"invalid ONNX: {first_line[:200]}",
        "onnxruntime_load": "onnxruntime cannot load the model (InvalidArgument)",
    }
    garbage = make_bundle(tmp_path / "g", site_keys["a"].private, LABELS, sign=False)
    (garbage / "model.onnx").write_bytes(b"\x08\xff\xff not a protobuf")
    sign_bundle(garbage, site_keys["a"].private, garbage / "site.sig")
    failures = failing(garbage, site_keys["a"])
    assert failures.pop("onnx_checker").startswith("invalid ONNX: Unable to parse proto from file: ")
    assert failures == {
        "onnxruntime_load": "onnxruntime cannot load the model (InvalidProtobuf)",
        "anonymization": "model.onnx is not a readable ONNX file",
    }


def test_anonymization_rescan_finds_leftovers_paths_and_denied_words(
    tmp_path: Path, site_keys: dict[str, SiteKey]
) -> None:
    model = tiny_onnx(2)
    model.graph.node[0].name = "/backbone/stem/Flatten"
    onnx.helper.set_model_props(model, {"source": "C:\\Users\\drsmith\\train.py"})
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS, model=model)
    detail = failing(folder, site_keys["a"])["anonymization"]
    assert detail == (
        "model.onnx keeps free text in model.metadata_props[0].key, model.metadata_props[0].value, "
        "model.graph.node[0].name; path-, file- or identifier-like strings in model.graph.node[0].name, "
        "model.metadata_props[0].value"
    )
    (tmp_path / "deny.yaml").write_text("deny_list: [Research decision]\n")
    clean = make_bundle(tmp_path / "c", site_keys["a"].private, LABELS)
    denied = failing(clean, site_keys["a"], policy_file=tmp_path / "deny.yaml")["anonymization"]
    assert "deny-listed strings in card.task.intended_use" in denied


def test_metric_floor_names_each_low_metric(tmp_path: Path, site_keys: dict[str, SiteKey]) -> None:
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS, auc=0.65, balanced_accuracy=0.5)
    assert failing(folder, site_keys["a"])["metric_floor"] == "balanced_accuracy 0.500 < 0.6, auc 0.650 < 0.7"
    at_the_floor = make_bundle(tmp_path / "f", site_keys["a"].private, LABELS, auc=0.7, balanced_accuracy=0.6)
    assert failing(at_the_floor, site_keys["a"]) == {}  # a floor is the lowest value that passes


def test_disabled_checks_are_reported_as_skipped(tmp_path: Path, site_keys: dict[str, SiteKey]) -> None:
    (tmp_path / "p.yaml").write_text("checks:\n  metric_floor: false\n")
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS, auc=0.1)
    results = run_checks(
        BundleUnderReview(folder, TASK, site_info(site_keys["a"])), load_policy(tmp_path / "p.yaml")
    )
    assert [r.to_dict() for r in results if r.name == "metric_floor"] == [
        {"check": "metric_floor", "status": "skipped", "detail": "disabled by the policy"}
    ]
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
    both = make_bundle(tmp_path / "2", site_keys["a"].private, LABELS, model=tiny_onnx(3), embedding=5)
    assert failing(both, site_keys["a"])["onnxruntime_load"] == (
        "logits has shape [2, 3], the card says [2, 2]; embedding has shape [2, 4], the card says [2, 5]"
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
    pixels = tiny_onnx(2)  # the right shape under another input name
    pixels.graph.input[0].name = pixels.graph.node[0].input[0] = "pixels"
    named = make_bundle(tmp_path / "p", site_keys["a"].private, LABELS, model=pixels)
    assert failing(named, site_keys["a"]) == {"onnxruntime_load": "expected one input `image` [batch,3,8,8]"}
    extra = tiny_onnx(2)  # outputs after logits and embedding are allowed
    extra.graph.output.append(helper.make_tensor_value_info("flat", TensorProto.FLOAT, ["batch", 192]))
    assert (
        failing(make_bundle(tmp_path / "e", site_keys["a"].private, LABELS, model=extra), site_keys["a"])
        == {}
    )


def test_the_checker_runs_the_full_check_with_strict_shape_inference(
    tmp_path: Path, site_keys: dict[str, SiteKey]
) -> None:
    model = tiny_onnx(2)  # well-formed, but logits are declared [batch,5] where MatMul gives [batch,2]
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 5
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS, model=model)
    assert failing(folder, site_keys["a"]) == {
        "onnx_checker": "invalid ONNX: [ShapeInferenceError] Inference error(s): (op_type:MatMul): "
        "[ShapeInferenceError] Inferred shape and existing shape differ in dimension 1: (2) vs (5)"
    }


def test_external_data_named_by_the_model_is_never_read(
    tmp_path: Path, site_keys: dict[str, SiteKey]
) -> None:
    model = tiny_onnx(2)
    model.graph.doc_string = "notes"
    weights = model.graph.initializer[0]  # its data moved to a file outside the bundle
    external_data_helper.set_external_data(weights, location="/etc/hostname")
    weights.ClearField("raw_data")
    weights.data_location = TensorProto.EXTERNAL
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS, sign=False)
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    sign_bundle(folder, site_keys["a"].private, folder / "site.sig")
    failures = failing(folder, site_keys["a"])
    assert failures["anonymization"] == (
        "model.onnx keeps free text in model.graph.doc_string; "
        "path-, file- or identifier-like strings in model.graph.initializer[0].external_data[0].value"
    )
    assert failures["onnxruntime_load"] == "onnxruntime cannot load the model (Fail)"


def test_the_card_of_another_task_is_named(tmp_path: Path, site_keys: dict[str, SiteKey]) -> None:
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS, task="breast")
    assert (
        failing(folder, site_keys["a"])["card_complete"]
        == "the card's task differs from the registry's task 'pneumonia'"
    )


ALL_ON = {
    "site_signature": True,
    "site_key_active": True,
    "card_complete": True,
    "onnx_checker": True,
    "onnxruntime_load": True,
    "anonymization": True,
    "metric_floor": True,
}


def test_the_default_policy_is_the_shipped_file() -> None:
    assert load_policy() == Policy(
        checks={**ALL_ON, "privacy": False},
        metric_floor={"balanced_accuracy": 0.6, "auc": 0.7},
        privacy=PrivacyLimits(),
        deny_list=[],
    )


def test_checks_and_privacy_merge_key_by_key_other_sections_are_replaced(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "checks:\n  metric_floor: false\nprivacy:\n  max_mia_auc: 0.5\n"
        "metric_floor:\n  macro_f1: 0.4\ndeny_list: [st elsewhere]\n"
    )
    assert load_policy(tmp_path / "p.yaml") == Policy(
        checks={**ALL_ON, "metric_floor": False, "privacy": False},
        metric_floor={"macro_f1": 0.4},
        privacy=PrivacyLimits(max_mia_auc=0.5),
        deny_list=["st elsewhere"],
    )
    (tmp_path / "empty.yaml").write_text("# nothing set\n")
    assert load_policy(tmp_path / "empty.yaml") == load_policy()


def test_a_bare_file_name_names_a_shipped_policy_unless_the_folder_has_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    strict = load_policy(Path("strict.yaml"))
    assert strict.checks == {**ALL_ON, "privacy": True}
    assert strict.privacy == PrivacyLimits(max_mia_auc=0.6, max_epsilon=10.0, delta=1e-5)
    (tmp_path / "strict.yaml").write_text("deny_list: [kgh]\n")
    assert load_policy(Path("strict.yaml")) == Policy(**{**load_policy().model_dump(), "deny_list": ["kgh"]})
    # Only shipped YAML files, only for bare names: the package's Python files are no policy.
    for name in ("checks.py", "sub/strict.yaml"):
        with pytest.raises(ConfigError) as absent:
            load_policy(Path(name))
        assert (absent.value.message, absent.value.hint) == (
            f"cannot read policy file {Path(name).name}",
            "check the --policy path",
        )


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        (
            b"1: x\n",
            "policy file p.yaml: unknown key 1",
            "known keys: checks, deny_list, metric_floor, privacy",
        ),
        (b"checks: \xff\n", "policy file p.yaml is not valid YAML (or not UTF-8 text)", None),
        (b"- a\n", "policy file p.yaml must be a mapping of keys to values", None),
        (
            b"metric_floor:\n  auc: high\n  macro_f1: []\n",
            "policy file p.yaml is invalid: metric_floor.auc: Input should be a valid number, unable to "
            "parse string as a number; metric_floor.macro_f1: Input should be a valid number",
            None,
        ),
        (
            b"privacy:\n  max_epsilon: 8\n",
            "policy file p.yaml is invalid: privacy: Value error, privacy.max_epsilon needs privacy.delta "
            "(an epsilon means nothing without it)",
            None,
        ),
    ],
)
def test_policy_file_refusals_are_exact(tmp_path: Path, text: bytes, message: str, hint: str | None) -> None:
    (tmp_path / "p.yaml").write_bytes(text)
    with pytest.raises(ConfigError) as refused:
        load_policy(tmp_path / "p.yaml")
    assert (refused.value.message, refused.value.hint) == (message, hint)


@pytest.mark.parametrize(
    ("limits", "problems"),
    [
        ("{max_mia_auc: 0.5, max_epsilon: 0.01, delta: 0.99}", []),
        ("{max_mia_auc: 1.0, delta: 1.0e-9}", []),
        ("{max_mia_auc: 0.49}", ["privacy.max_mia_auc: Input should be greater than or equal to 0.5"]),
        ("{max_mia_auc: 1.01}", ["privacy.max_mia_auc: Input should be less than or equal to 1"]),
        ("{max_epsilon: 0, delta: 1.0e-5}", ["privacy.max_epsilon: Input should be greater than 0"]),
        ("{delta: 0}", ["privacy.delta: Input should be greater than 0"]),
        ("{delta: 1}", ["privacy.delta: Input should be less than 1"]),
    ],
)
def test_privacy_limits_are_bounded(tmp_path: Path, limits: str, problems: list[str]) -> None:
    (tmp_path / "p.yaml").write_text(f"privacy: {limits}\n")
    if not problems:
        load_policy(tmp_path / "p.yaml")
        return
    with pytest.raises(ConfigError) as refused:
        load_policy(tmp_path / "p.yaml")
    assert refused.value.message == "policy file p.yaml is invalid: " + "; ".join(problems)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("/srv/pacs/export", 0),
        ("C:\\data", 1),
        ("\\\\server\\share", 2),
        ("scan_0042.dcm", 3),
        ("x.nii.gz", 3),
        ("Traceback (most recent call last)", 4),
        ('File "train", line 52', 4),
        ("1.2.840.10008.5.1", 5),
        ("dr@hospital.org", 6),
    ],
)
def test_each_identifying_pattern_finds_its_kind_of_string(text: str, pattern: int) -> None:
    # Each string matches exactly one pattern, so that every pattern is shown to work on its own.
    assert [i for i, p in enumerate(_IDENTIFYING) if p.search(text)] == [pattern]
    assert _identifying_fields([("card.notes", "ordinary"), ("card.task.notes", text)]) == ["card.task.notes"]


def test_near_misses_are_not_identifying() -> None:
    named = [("a", "1.2.840.1"), ("b", "ratio 1/2"), ("c", "version 1.2"), ("d", "a.pyc"), ("e", "")]
    assert _identifying_fields(named) == []


@pytest.mark.parametrize(("named", "rest"), [(1, ""), (2, " (+1 more)"), (3, " (+2 more)")])
def test_anonymization_names_five_fields_and_counts_the_rest(
    named: int, rest: str, tmp_path: Path, site_keys: dict[str, SiteKey]
) -> None:
    model = tiny_onnx(2)  # three nodes: their doc strings, the graph's and `named` node names
    for index, node in enumerate(model.graph.node):
        node.name = f"n{index}" if index < named else ""
        node.doc_string = "trace"
    model.graph.doc_string = "graph notes"
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS, model=model)
    assert failing(folder, site_keys["a"]) == {
        "anonymization": "model.onnx keeps free text in model.graph.node[0].doc_string, "
        "model.graph.node[1].doc_string, model.graph.node[2].doc_string, model.graph.doc_string, "
        f"model.graph.node[0].name{rest}"
    }


def test_a_missing_metric_and_a_rotated_key_are_named(tmp_path: Path, site_keys: dict[str, SiteKey]) -> None:
    no_auc = make_bundle(tmp_path / "m", site_keys["a"].private, LABELS, auc=None)
    assert failing(no_auc, site_keys["a"]) == {"metric_floor": "auc n/a < 0.7"}
    folder = make_bundle(tmp_path / "r", site_keys["a"].private, LABELS)
    assert failing(folder, site_keys["a"], status="retired") == {
        "site_key_active": "the signing key was replaced by site 'site-a''s new key (key rotation)"
    }


def test_a_broken_card_fails_every_check_that_reads_it_with_the_cards_error(
    tmp_path: Path, site_keys: dict[str, SiteKey]
) -> None:
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS, card_data={"format_version": "1.0"})
    failures = failing(folder, site_keys["a"])
    assert failures.keys() == {
        "site_signature",
        "card_complete",
        "onnxruntime_load",
        "anonymization",
        "metric_floor",
    }
    assert set(failures.values()) == {
        "card.json is invalid: card: 'model_uid' is a required property; "
        "card: 'task' is a required property; "
        "card: 'model' is a required property; card: 'preprocessing' is a required property; "
        "card: 'evaluation' is a required property ..."
    }


def test_a_check_the_policy_does_not_name_is_on() -> None:
    assert Policy(checks={}).enabled("metric_floor") is True
    assert Policy(checks={"privacy": False}).enabled("privacy") is False


def test_file_keys_merge_over_the_defaults_values_and_a_broken_default_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shipped defaults of `privacy` are all null; defaults with values show the merge.
    defaults = {"checks": {"privacy": True}, "metric_floor": {}, "privacy": {"delta": 1e-5}, "deny_list": []}
    monkeypatch.setattr(policy_module, "_default_raw", lambda: json.loads(json.dumps(defaults)))
    (tmp_path / "p.yaml").write_text("privacy:\n  max_epsilon: 3\n")
    assert load_policy(tmp_path / "p.yaml").privacy == PrivacyLimits(max_epsilon=3.0, delta=1e-5)
    defaults["checks"] = {"site_key_active": False}
    with pytest.raises(ConfigError) as broken:
        load_policy()
    assert broken.value.message == (
        "the default policy is invalid: site_key_active cannot be switched off: "
        "approvals always check the site signature"
    )


def test_a_policy_file_is_read_as_utf8_whatever_the_locale(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("deny_list: [Zürich-Spital]\n", encoding="utf-8")
    assert load_policy(tmp_path / "p.yaml").deny_list == ["Zürich-Spital"]  # here: a UTF-8 locale
    code = "import sys; from pathlib import Path; from registry.policy.policy import load_policy; "
    code += "print(ascii(load_policy(Path(sys.argv[1])).deny_list))"
    ascii_locale = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "p.yaml")],
        env=ascii_locale,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == "['Z\\xfcrich-Spital']\n"


def test_the_rescan_refuses_identifying_free_text_the_site_should_have_stopped(
    tmp_path: Path, site_keys: dict[str, SiteKey]
) -> None:
    card = card_for(LABELS, fingerprint(site_keys["a"].private.public_key()))
    card["task"]["limitations"] = ["Validated by Dr. Jane Roe.", "Images on smb://fileserver/radiology"]
    folder = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS, card_data=card)
    assert failing(folder, site_keys["a"])["anonymization"] == (
        "identifying free text in card.task.limitations[0], card.task.limitations[1]"
    )
