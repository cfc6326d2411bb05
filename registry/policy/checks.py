"""The approval checks. Each one runs independently, so a refusal lists every failing check.

Nothing here trusts the MLflow tags: the card is read from the downloaded bundle and the site key
from the registry's own ``sites`` table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from google.protobuf.message import DecodeError
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

from gsco_common.errors import CardError, SignatureError
from gsco_common.text import first_items
from registry.bundle.card import Card, card_strings
from registry.bundle.free_text import free_text_fields
from registry.bundle.layout import MODEL_FILE, SITE_SIG
from registry.bundle.phi import onnx_strings, scan_strings
from registry.bundle.signing import verify_bundle
from registry.policy.policy import CheckName, Policy
from registry.store.catalog import RETIRED, SiteInfo, TaskInfo

PASS, FAIL, SKIPPED = "pass", "fail", "skipped"

# onnxruntime raises its own exception types (not RuntimeError subclasses).
_ORT_ERRORS = (
    RuntimeError,
    ValueError,
    ort_errors.Fail,
    ort_errors.InvalidArgument,
    ort_errors.InvalidGraph,
    ort_errors.InvalidProtobuf,
    ort_errors.NoSuchFile,
    ort_errors.NotImplemented,
    ort_errors.RuntimeException,
)

# Strings that look like they came from a file system, a stack trace or a DICOM identifier.
_IDENTIFYING = [
    re.compile(r"(^|[\s\"'=(])/(?:[^/\s]+/)+[^/\s]*"),  # absolute POSIX path
    re.compile(r"[A-Za-z]:\\"),  # Windows path
    re.compile(r"\\\\[^\\\s]+\\"),  # UNC share
    re.compile(r"[\w-]\.(?:dcm|dicom|png|jpe?g|tiff?|bmp|nii(?:\.gz)?|npz|npy|csv|py)\b", re.IGNORECASE),
    re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+"),
    re.compile(r"\b1\.2\.840\.\d+(?:\.\d+){2,}\b"),  # DICOM UID root
    re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"),  # e-mail address
]


@dataclass(frozen=True)
class CheckResult:
    name: CheckName
    status: str
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    def to_dict(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status, "detail": self.detail}

    def line(self) -> str:
        return f"{self.name}: {self.detail}" if self.detail else self.name


@dataclass(frozen=True)
class BundleUnderReview:
    """What the checks look at: the downloaded folder and the registry's own records."""

    bundle_dir: Path
    task: TaskInfo
    site: SiteInfo | None

    def card(self) -> Card:
        return Card.read(self.bundle_dir)


def _site_signature(review: BundleUnderReview, _policy: Policy) -> str:
    if review.site is None:
        return "no enrolled key to verify site.sig against"
    try:
        verify_bundle(
            review.bundle_dir, review.site.public_key_pem.encode("ascii"), review.bundle_dir / SITE_SIG
        )
    except SignatureError as exc:
        return exc.message
    card = review.card()
    if card.key_fingerprint != review.site.fingerprint:
        return "the card names a different key than the one that signed it"
    return ""


def _site_key_active(review: BundleUnderReview, _policy: Policy) -> str:
    if review.site is None:
        return "the signing key is not enrolled"
    if review.site.status == RETIRED:
        return f"the signing key was replaced by site {review.site.name!r}'s new key (key rotation)"
    return "" if review.site.active else f"site {review.site.name!r} is revoked"


def _card_complete(review: BundleUnderReview, _policy: Policy) -> str:
    card = review.card()
    if card.task_id != review.task.task_id:
        return f"the card's task differs from the registry's task {review.task.task_id!r}"
    if card.labels != review.task.labels:
        return "the card's labels differ from the task's labels (names and order must match)"
    return ""


def _onnx_checker(review: BundleUnderReview, _policy: Policy) -> str:
    try:
        onnx.checker.check_model(str(review.bundle_dir / MODEL_FILE), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        return f"invalid ONNX: {str(exc).splitlines()[0][:200]}"
    return ""


def _onnxruntime_load(review: BundleUnderReview, _policy: Policy) -> str:
    card = review.card()
    try:
        session = ort.InferenceSession(
            str(review.bundle_dir / MODEL_FILE), providers=["CPUExecutionProvider"]
        )
    except _ORT_ERRORS as exc:
        return f"onnxruntime cannot load the model ({exc.__class__.__name__})"
    inputs = session.get_inputs()
    size = card.preprocessing.input_size
    if len(inputs) != 1 or inputs[0].name != "image" or list(inputs[0].shape[1:]) != [3, size, size]:
        return f"expected one input `image` [batch,3,{size},{size}]"
    names = [out.name for out in session.get_outputs()]
    if names[:2] != ["logits", "embedding"]:
        return f"expected outputs logits, embedding; found {', '.join(names)}"
    try:
        logits, embedding = session.run(
            ["logits", "embedding"], {"image": np.zeros((2, 3, size, size), np.float32)}
        )
    except _ORT_ERRORS as exc:
        return f"the model fails on a batch of two images ({exc.__class__.__name__})"
    expected = {"logits": (2, len(card.labels)), "embedding": (2, card.embedding_dim)}
    actual = {"logits": tuple(logits.shape), "embedding": tuple(embedding.shape)}
    wrong = [name for name in expected if expected[name] != actual[name]]
    if wrong:
        return "; ".join(f"{n} has shape {list(actual[n])}, the card says {list(expected[n])}" for n in wrong)
    return ""


def _identifying_fields(named: Iterable[tuple[str, str]]) -> list[str]:
    return [field for field, text in named if any(p.search(text) for p in _IDENTIFYING)]


def _anonymization(review: BundleUnderReview, policy: Policy) -> str:
    try:
        model = onnx.load(str(review.bundle_dir / MODEL_FILE), load_external_data=False)
    except DecodeError:
        return "model.onnx is not a readable ONNX file"
    strings = list(onnx_strings(model))
    leftovers = [f for f, _ in strings if f.endswith(".doc_string") or ".metadata_props" in f]
    leftovers += [f for f, text in strings if re.search(r"\.node\[\d+\]\.name$", f) and text]
    card_text = list(card_strings(review.card().data))
    problems = []
    if leftovers:
        problems.append(f"model.onnx keeps free text in {_few(leftovers)}")
    identifying = _identifying_fields(strings) + _identifying_fields(card_text)
    if identifying:
        problems.append(f"path-, file- or identifier-like strings in {_few(identifying)}")
    free_text = free_text_fields(card_text)  # what the site's export refused: re-checked, not trusted
    if free_text:
        problems.append(f"identifying free text in {_few(free_text)}")
    denied = scan_strings([*strings, *card_text], [], deny_list=policy.deny_list)
    if denied:
        problems.append(f"deny-listed strings in {_few(denied)}")
    return "; ".join(problems)


def _few(fields: list[str]) -> str:
    return first_items(fields, 5)


def _metric_floor(review: BundleUnderReview, policy: Policy) -> str:
    metrics = review.card().headline_metrics()
    low = []
    for name, floor in policy.metric_floor.items():
        value = metrics.get(name)
        if value is None or value < floor:
            shown = "n/a" if value is None else f"{value:.3f}"
            low.append(f"{name} {shown} < {floor:g}")
    return ", ".join(low)


def _privacy(review: BundleUnderReview, policy: Policy) -> str:
    card = review.card()
    limits = policy.privacy
    dp = card.privacy
    problems = []
    mia = card.membership_inference_auc
    if limits.max_mia_auc is not None and (mia is None or mia > limits.max_mia_auc):
        shown = "n/a" if mia is None else f"{mia:.3f}"
        problems.append(f"membership-inference AUC {shown} > {limits.max_mia_auc:g} (privacy.max_mia_auc)")
    if limits.dp_required and dp is None:
        problems.append("trained without differential privacy (privacy.dp_required)")
    if limits.max_epsilon is not None and dp is not None:
        # notion "both": the sample-level figures and the hub's update-level ones must each hold
        for name, figures in (("", dp), (" (update-level)", dp.get("update_level"))):
            if figures is None:
                continue
            if figures["epsilon"] > limits.max_epsilon:
                shown = f"{figures['epsilon']:.3g} > {limits.max_epsilon:g}"
                problems.append(f"DP epsilon{name} {shown} (privacy.max_epsilon)")
            if figures["delta"] > limits.delta:
                problems.append(f"DP delta{name} {figures['delta']:.3g} > {limits.delta:g} (privacy.delta)")
    return "; ".join(problems)


CHECKS: dict[CheckName, Callable[[BundleUnderReview, Policy], str]] = {
    "site_signature": _site_signature,
    "site_key_active": _site_key_active,
    "card_complete": _card_complete,
    "onnx_checker": _onnx_checker,
    "onnxruntime_load": _onnxruntime_load,
    "anonymization": _anonymization,
    "metric_floor": _metric_floor,
    "privacy": _privacy,
}
_NEEDS_CARD = {"card_complete", "onnxruntime_load", "metric_floor", "privacy"}


def run_checks(review: BundleUnderReview, policy: Policy) -> list[CheckResult]:
    """Run every check of the policy; a broken card fails the card-dependent checks, not the run."""
    try:
        review.card()
        card_error = ""
    except CardError as exc:
        card_error = exc.message
    results = []
    for name, check in CHECKS.items():
        if not policy.enabled(name):
            results.append(CheckResult(name, SKIPPED, "disabled by the policy"))
        elif name in _NEEDS_CARD and card_error:
            results.append(CheckResult(name, FAIL, card_error))
        else:
            try:
                problem = check(review, policy)
            except CardError as exc:
                problem = exc.message
            results.append(CheckResult(name, FAIL if problem else PASS, problem))
    return results
