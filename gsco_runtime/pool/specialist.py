"""A loaded specialist: its card facts, an onnxruntime session and a micro-batcher in front of it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from gsco_common.errors import ModelError
from gsco_common.ids import version_key
from gsco_runtime.pool.batcher import MicroBatcher
from gsco_runtime.pool.threads import ThreadBudget
from registry.bundle.card import INPUT_NAME, OUTPUT_NAMES
from registry.bundle.preprocess import Preprocessing, preprocess, preprocess_batch
from registry.bundle.tta import merge, views

LIBRARY_BATCH = 64
_ORT_ERRORS = (
    OSError,
    ort_state.Fail,
    ort_state.InvalidArgument,
    ort_state.InvalidGraph,
    ort_state.InvalidProtobuf,
    ort_state.NoSuchFile,
    ort_state.NotImplemented,
    ort_state.RuntimeException,
)


@dataclass(frozen=True)
class SpecialistInfo:
    """What the runtime needs from a bundle's card and registry entry."""

    name: str
    version: str
    task_id: str
    label_names: tuple[str, ...]
    modality: str
    backbone: str
    site_fingerprint: str
    model_uid: str
    preprocessing: Preprocessing
    tta: str = "none"
    """The card's test-time augmentation (``registry.bundle.tta``): which views a prediction averages."""
    validation: Mapping[str, float] = field(default_factory=dict)
    validation_upper: Mapping[str, float] = field(default_factory=dict)
    """Upper ends of the card's 95 % intervals of ``validation``."""
    training_set_digest: str | None = None
    training_set_digests: tuple[str, ...] = ()
    """Every digest of data the model trained on (its own and, federated, each site's)."""
    model_digest: str = ""
    model_content_digest: str = ""
    """``sha256`` of ``model.onnx``: a revoked content leaves the pool under any name."""
    approved_by: str = ""
    approved_at: str = ""

    @property
    def key(self) -> str:
        """Identity in the pool: registered model name and version."""
        return version_key(self.name, self.version)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


class LoadedSpecialist:
    """An onnxruntime session ready to serve; immutable once built (swapped, never mutated)."""

    def __init__(
        self,
        info: SpecialistInfo,
        session: ort.InferenceSession,
        budget: ThreadBudget,
        *,
        max_batch: int = 16,
        max_wait_s: float = 0.002,
        demand: Callable[[], int] | None = None,
    ) -> None:
        self.info = info
        self._session = session
        self._budget = budget
        self.batcher: MicroBatcher[tuple[np.ndarray, np.ndarray]] = MicroBatcher(
            self._run_rows, max_batch=max_batch, max_wait_s=max_wait_s, demand=demand, slot=budget.slot
        )

    @classmethod
    def load(
        cls, model_path: Path, info: SpecialistInfo, budget: ThreadBudget, **batching: object
    ) -> LoadedSpecialist:
        """Create the session, check the model's signature and run a warm-up batch."""
        try:
            session = ort.InferenceSession(
                str(model_path), budget.session_options(), providers=["CPUExecutionProvider"]
            )
        except _ORT_ERRORS as exc:
            raise ModelError(f"specialist {info.key} cannot be loaded by onnxruntime") from exc
        inputs = [i.name for i in session.get_inputs()]
        outputs = [o.name for o in session.get_outputs()]
        if inputs != [INPUT_NAME] or not set(OUTPUT_NAMES) <= set(outputs):
            raise ModelError(
                f"specialist {info.key} does not have input 'image' and outputs 'logits', 'embedding'"
            )
        specialist = cls(info, session, budget, **batching)  # type: ignore[arg-type]
        try:
            specialist.warm_up()
        except _ORT_ERRORS as exc:
            raise ModelError(
                f"specialist {info.key} fails on a warm-up batch of its card's input size"
            ) from exc
        return specialist

    def warm_up(self) -> None:
        size = self.info.preprocessing.input_size
        logits, embedding = self.run(np.zeros((1, 3, size, size), dtype=np.float32))
        if logits.shape != (1, len(self.info.label_names)) or embedding.ndim != 2:
            raise ModelError(
                f"specialist {self.info.key} returns {logits.shape[-1]} classes, "
                f"its card names {len(self.info.label_names)}"
            )

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Session call on a preprocessed ``[N, 3, S, S]`` batch within the thread budget."""
        with self._budget.slot():
            return self._run_in_slot(batch)

    def _run_in_slot(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, embedding = self._session.run(list(OUTPUT_NAMES), {INPUT_NAME: batch})
        return np.asarray(logits, dtype=np.float32), np.asarray(embedding, dtype=np.float32).reshape(
            batch.shape[0], -1
        )

    def _run_rows(self, batch: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """The micro-batcher's call: it already holds the budget's slot."""
        logits, embedding = self._run_in_slot(batch)
        probs = softmax(logits)
        return [(probs[i], embedding[i]) for i in range(batch.shape[0])]

    def prepare(self, image: np.ndarray) -> np.ndarray:
        return preprocess(image, self.info.preprocessing)

    def predict(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One image through the micro-batcher: ``(probabilities [C], embedding [D])``.

        With the card's ``tta`` the views go through the batcher together; the outputs are averaged.
        """
        rows = self.batcher.submit_many([view[0] for view in views(self.prepare(image)[None], self.info.tta)])
        return merge([probs for probs, _ in rows]), merge([embedding for _, embedding in rows])

    def predict_many(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Many images in fixed batches (library embedding, evaluation): ``(probs [N, C], emb [N, D])``."""
        probs: list[np.ndarray] = []
        embeddings: list[np.ndarray] = []
        for start in range(0, len(images), LIBRARY_BATCH):
            batch = preprocess_batch(list(images[start : start + LIBRARY_BATCH]), self.info.preprocessing)
            outputs = [self.run(view) for view in views(batch, self.info.tta)]
            probs.append(merge([softmax(logits) for logits, _ in outputs]))
            embeddings.append(merge([embedding for _, embedding in outputs]))
        if not probs:
            return np.zeros((0, len(self.info.label_names)), np.float32), np.zeros((0, 0), np.float32)
        return np.concatenate(probs), np.concatenate(embeddings)
