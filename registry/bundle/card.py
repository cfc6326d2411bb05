"""The model card (``card.json``): schema validation, consistency checks and typed access.

The JSON schema (``registry/schemas/card.schema.json``) is closed: every field is named, so no
path, host name, user name or identifier can ride along in a free-form field. On top of the
schema, :func:`card_problems` checks that the parts agree with each other (labels, output shapes,
input size). Sites build cards (``specialist.export.card_builder``); the registry and the hub read
them through :class:`Card`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from gsco_common.errors import CardError
from registry.bundle.layout import CARD_FILE
from registry.bundle.preprocess import Preprocessing
from registry.bundle.tta import tta_problem

FORMAT_VERSION = "1.0"
SMALL_COUNT = 10
SUPPRESSED = "<10"
HEADLINE_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "auc")
# The DP notions a card's training.privacy.notion may name (the schema's enum).
NOTION_SITE = "sample-level (DP-SGD at the site)"
NOTION_HUB = "update-level (clipping and noise at the hub)"
NOTION_BOTH = "both"
# The ONNX graph's input and outputs, named alike in every bundle (export writes them, the hub reads them).
INPUT_NAME = "image"
OUTPUT_NAMES = ("logits", "embedding")


def model_section(
    backbone: str, num_classes: int, embedding_dim: int, size: int, opset: int
) -> dict[str, Any]:
    """The card's ``model`` block: the backbone and the shapes of the graph's input and outputs."""
    logits, embedding = OUTPUT_NAMES
    return {
        "backbone": backbone,
        "num_classes": num_classes,
        "embedding_dim": embedding_dim,
        "input": {"name": INPUT_NAME, "shape": ["batch", 3, size, size]},
        "outputs": {logits: ["batch", num_classes], embedding: ["batch", embedding_dim]},
        "opset": opset,
    }


@cache
def card_schema() -> dict[str, Any]:
    text = resources.files("registry").joinpath("schemas/card.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def suppress_count(count: int) -> int | str:
    """Small-cell suppression: counts below 10 become ``"<10"``."""
    return int(count) if count >= SMALL_COUNT else SUPPRESSED


def shown_total(cells: Iterable[int], threshold: int = SMALL_COUNT) -> int:
    """The total of ``cells`` as it may be published beside them: the sum of those not suppressed.

    The exact total would give a suppressed cell back by subtraction (``n`` 107 with one class at
    100: the other is 7), and rounded it would still narrow it (30 with one class at 24: 6 to 9).
    The sum of the shown cells says nothing the cells do not; with none suppressed it is exact.
    """
    return sum(int(cell) for cell in cells if cell >= threshold)


def suppress_total(cells: Iterable[int]) -> int | str:
    """:func:`suppress_count` of :func:`shown_total`."""
    return suppress_count(shown_total(cells))


def _path(parts: Any) -> str:
    return "card" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def card_problems(card: Any) -> list[str]:
    """Every schema violation and inconsistency, each naming its field; empty when valid."""
    validator = Draft202012Validator(card_schema())
    problems = [
        f"{_path(err.absolute_path)}: {err.message}"
        for err in sorted(validator.iter_errors(card), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if problems:
        return problems
    labels = card["task"]["labels"]
    model = card["model"]
    size = card["preprocessing"]["input_size"]
    if model["num_classes"] != len(labels):
        problems.append("card.model.num_classes: differs from the number of task labels")
    if model["input"]["shape"][2:] != [size, size]:
        problems.append("card.model.input.shape: differs from preprocessing.input_size")
    if model["outputs"]["logits"][1] != len(labels):
        problems.append("card.model.outputs.logits: width differs from the number of task labels")
    if model["outputs"]["embedding"][1] != model["embedding_dim"]:
        problems.append("card.model.outputs.embedding: width differs from model.embedding_dim")
    if [row["label"] for row in card["evaluation"]["per_class"]] != labels:
        problems.append("card.evaluation.per_class: labels differ from task.labels (order matters)")
    tta_refusal = tta_problem(card.get("inference", {}).get("tta", "none"), card["task"]["modality"])
    if tta_refusal:
        problems.append(f"card.inference.tta: {tta_refusal}")
    for split, counts in card["data"]["class_counts"].items():
        if list(counts) != labels:
            problems.append(f"card.data.class_counts.{split}: labels differ from task.labels")
    return problems


def card_strings(card: Any, prefix: str = "card") -> Iterator[tuple[str, str]]:
    """Every string value of the card as ``(field, text)``, for the PHI scan.

    Keys are not yielded: the schema fixes them, except label names under ``class_counts`` and
    ``per_class``, which are the task's published labels anyway.
    """
    if isinstance(card, dict):
        for key, value in card.items():
            yield from card_strings(value, f"{prefix}.{key}")
    elif isinstance(card, list):
        for index, value in enumerate(card):
            yield from card_strings(value, f"{prefix}[{index}]")
    elif isinstance(card, str):
        yield prefix, card


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` refusing a key given twice in one object.

    json keeps the last value, hiding the first from the schema and the PHI scan, while another
    reader of the same file may take the first.
    """
    if any(count > 1 for count in Counter(key for key, _ in pairs).values()):
        raise CardError("card.json gives a key twice in one object", hint="re-export the bundle")
    return dict(pairs)


@dataclass(frozen=True)
class Card:
    """A validated card with typed access to what the registry and the hub need."""

    data: dict[str, Any]

    @classmethod
    def from_dict(cls, data: Any) -> Card:
        problems = card_problems(data)
        if problems:
            raise CardError(
                "card.json is invalid: " + "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""),
                hint="re-export the bundle with `site-agent export RUN_DIR`",
            )
        return cls(data)

    @classmethod
    def read(cls, bundle_dir: Path) -> Card:
        path = bundle_dir / CARD_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_unique_keys)
        except FileNotFoundError:
            raise CardError("the bundle has no card.json", hint="re-export the bundle") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CardError(f"card.json is not valid JSON ({exc.__class__.__name__})") from None
        return cls.from_dict(data)

    @property
    def task_id(self) -> str:
        return self.data["task"]["id"]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.data["task"]["labels"])

    @property
    def modality(self) -> str:
        return self.data["task"]["modality"]

    @property
    def backbone(self) -> str:
        return self.data["model"]["backbone"]

    @property
    def embedding_dim(self) -> int:
        return int(self.data["model"]["embedding_dim"])

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing.from_dict(self.data["preprocessing"])

    @property
    def tta(self) -> str:
        """``inference.tta`` (``registry.bundle.tta``); ``"none"`` on cards without the field."""
        return str(self.data.get("inference", {}).get("tta", "none"))

    @property
    def pretrained(self) -> dict[str, str] | None:
        """``training.pretrained`` (weights file name, sha256, origin); None for random init."""
        return self.data["training"].get("pretrained")

    @property
    def key_fingerprint(self) -> str:
        return self.data["site"]["key_fingerprint"]

    @property
    def model_uid(self) -> str:
        return self.data["model_uid"]

    @property
    def training_set_digest(self) -> str | None:
        """Digest of the training set as a whole (``registry.bundle.provenance``); None on older cards."""
        return self.data["data"].get("training_set_digest")

    @property
    def training_set_digests(self) -> tuple[str, ...]:
        """Every digest of data this model trained on: the card's own and, federated, each site's."""
        sites = self.data.get("federation", {}).get("training_sets", [])
        found = [self.training_set_digest, *(site["training_set_digest"] for site in sites)]
        return tuple(dict.fromkeys(digest for digest in found if digest))

    @property
    def privacy(self) -> dict[str, Any] | None:
        """``training.privacy`` (notion, spent ε, δ, accountant...); None when trained without DP."""
        return self.data["training"].get("privacy")

    @property
    def membership_inference_auc(self) -> float | None:
        return self.data["training"]["membership_inference_auc"]

    @property
    def federated(self) -> bool:
        return "federation" in self.data

    def headline_metrics(self) -> dict[str, float | None]:
        """Point estimates of the held-out headline metrics plus ECE."""
        metrics = self.data["evaluation"]["metrics"]
        values = {name: metrics[name]["value"] for name in HEADLINE_METRICS}
        values["ece"] = self.data["evaluation"]["ece"]["value"]
        return values

    def headline_upper_bounds(self) -> dict[str, float]:
        """Upper ends of the headline metrics' 95 % intervals (where the card has one)."""
        metrics = self.data["evaluation"]["metrics"]
        return {name: metrics[name]["ci95"][1] for name in HEADLINE_METRICS if metrics[name]["ci95"]}


def write_card(card: dict[str, Any], bundle_dir: Path) -> Path:
    """Validate and write ``card.json`` (sorted keys, UTF-8) into ``bundle_dir``."""
    Card.from_dict(card)
    path = bundle_dir / CARD_FILE
    path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
