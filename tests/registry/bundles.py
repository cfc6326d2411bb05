"""Tiny, valid, signed bundles built in milliseconds (no torch): for the registry's own tests.

The model is ``image -> Flatten -> MatMul -> embedding -> MatMul -> logits``, anonymized the way
site exports are (fixed producer, neutral graph name, no doc strings or node names).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from cryptography.hazmat.primitives.asymmetric import ec
from onnx import TensorProto, helper, numpy_helper

from gsco_common.keys import fingerprint
from registry.bundle.card import model_section, write_card
from registry.bundle.layout import SITE_SIG
from registry.bundle.signing import sign_bundle

SIZE = 8
EMBEDDING = 4


def tiny_onnx(
    num_classes: int, *, size: int = SIZE, embedding: int = EMBEDDING, seed: int = 0
) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    w1 = numpy_helper.from_array(rng.normal(size=(3 * size * size, embedding)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(size=(embedding, num_classes)).astype(np.float32), "w2")
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["image"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "w1"], ["embedding"]),
            helper.make_node("MatMul", ["embedding", "w2"], ["logits"]),
        ],
        "specialist",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, size, size])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", num_classes]),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", embedding]),
        ],
        initializer=[w1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="gsco")
    model.producer_version = "1"
    model.ir_version = 10
    return model


def _estimate(value: float | None) -> dict[str, Any]:
    return {
        "value": value,
        "ci95": None if value is None else [max(0.0, value - 0.05), min(1.0, value + 0.05)],
    }


def card_for(
    labels: list[str],
    key_fp: str,
    *,
    task: str = "pneumonia",
    backbone: str = "tinynet",
    auc: float = 0.9,
    balanced_accuracy: float = 0.85,
    uid: str = "0" * 32,
    size: int = SIZE,
    embedding: int = EMBEDDING,
    mia_auc: float | None = 0.52,
    privacy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    card: dict[str, Any] = {
        "format_version": "1.0",
        "model_uid": uid,
        "task": {
            "id": task,
            "labels": labels,
            "modality": "chest X-ray",
            "intended_use": "Research decision support.",
            "out_of_scope": ["Sole basis of a diagnosis."],
            "limitations": ["Single-site data."],
        },
        "model": model_section(backbone, len(labels), embedding, size, 18),
        "preprocessing": {
            "input_size": size,
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
            "interpolation": "bilinear",
            "channels": "gray_to_rgb",
        },
        "evaluation": {
            "split": "test",
            "n": 120,
            "metrics": {
                "accuracy": _estimate(0.86),
                "balanced_accuracy": _estimate(balanced_accuracy),
                "macro_f1": _estimate(0.84),
                "auc": _estimate(auc),
            },
            "per_class": [
                {"label": label, "sensitivity": _estimate(0.8), "specificity": _estimate(0.9)}
                for label in labels
            ],
            "operating_point": {"rule": "argmax", "threshold": 0.5 if len(labels) == 2 else None},
            "ece": _estimate(0.04),
            "bootstrap": {"resamples": 200, "seed": 0},
        },
        "training": {
            "epochs": 2,
            "best_epoch": 2,
            "seed": 0,
            "dp_epsilon": None if privacy is None else privacy["epsilon"],
            "membership_inference_auc": mia_auc,
        },
        "data": {
            "class_counts": {
                "train": {label: 50 for label in labels},
                "test": {label: "<10" for label in labels},
            }
        },
        "site": {"key_fingerprint": key_fp},
    }
    if privacy is not None:
        card["training"]["privacy"] = privacy
    return card


def make_bundle(
    folder: Path,
    key: ec.EllipticCurvePrivateKey,
    labels: list[str],
    *,
    model: onnx.ModelProto | None = None,
    card_data: dict[str, Any] | None = None,
    sign: bool = True,
    **card: Any,
) -> Path:
    """Write ``model.onnx``, ``card.json`` and (unless ``sign=False``) ``site.sig`` into ``folder``.

    ``card_data`` is written as is (unvalidated), for tests of broken cards.
    """
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model or tiny_onnx(len(labels)), folder / "model.onnx")
    if card_data is not None:
        (folder / "card.json").write_text(json.dumps(card_data))
    else:
        write_card(card_for(labels, fingerprint(key.public_key()), **card), folder)
    if sign:
        sign_bundle(folder, key, folder / SITE_SIG)
    return folder
