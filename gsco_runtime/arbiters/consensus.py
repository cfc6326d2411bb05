"""The embedded ``consensus`` arbiter: decides without a generalist, and says so.

It pools the specialists' probabilities and their retrieved neighbours' label distributions with
a :class:`~gsco_runtime.arbiters.weights.ConsensusModel`: calibrated on the case library when one
is imported and clean (cached in memory and on disk per set of specialists and library, so a
restart does not recalibrate), else weighted by the cards' validation performance. Per query,
each specialist's weight is scaled by its local competence on the cases it retrieved
(:mod:`~gsco_runtime.arbiters.retrieved`). The model's ``source`` (which weights, and why) goes
into every outcome.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import numpy as np

from gsco_runtime.arbiters.base import Evidence, Outcome, register_arbiter
from gsco_runtime.arbiters.calibration import CALIBRATION_VERSION, calibrate, specialists_card_model
from gsco_runtime.arbiters.retrieved import retrieval_features
from gsco_runtime.arbiters.weights import ConsensusModel
from gsco_runtime.decision import NO_GENERALIST
from gsco_runtime.pool.specialist import LoadedSpecialist
from gsco_runtime.rad.retriever import Retriever

NAME = "consensus"


class ConsensusArbiter:
    """Calibrated log-linear vote of specialists and retrieval; never uses a generalist."""

    name = NAME
    uses_generalist = False

    def __init__(self, *, calibrate_on_library: bool = True, cache_dir: Path | None = None) -> None:
        self.calibrate_on_library = calibrate_on_library
        self.cache_dir = cache_dir
        self._models: dict[tuple[str, ...], ConsensusModel] = {}
        self._lock = threading.Lock()

    def _cache_path(self, key: tuple[str, ...]) -> Path | None:
        if self.cache_dir is None:
            return None
        return (
            self.cache_dir / "consensus" / (hashlib.sha256("|".join(key).encode()).hexdigest()[:32] + ".json")
        )

    def _load_cached(self, key: tuple[str, ...]) -> ConsensusModel | None:
        path = self._cache_path(key)
        if path is None or not path.is_file():
            return None
        data = json.loads(path.read_text())
        return ConsensusModel(
            np.asarray(data["specialist_weights"]),
            np.asarray(data["retrieval_weights"]),
            np.asarray(data["bias"]),
            source=data["source"],
        )

    def _store(self, key: tuple[str, ...], model: ConsensusModel) -> None:
        path = self._cache_path(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "specialist_weights": model.specialist_weights.tolist(),
            "retrieval_weights": model.retrieval_weights.tolist(),
            "bias": model.bias.tolist(),
            "source": model.source,
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)

    def model_for(
        self, specialists: tuple[LoadedSpecialist, ...], retriever: Retriever | None
    ) -> ConsensusModel:
        """The weights for this set of specialists (and library), computed once and cached."""
        library_digest = retriever.library.digest if retriever is not None else ""
        key = (CALIBRATION_VERSION, library_digest, *(s.info.model_digest for s in specialists))
        with self._lock:
            if key in self._models:
                return self._models[key]
            if retriever is not None and self.calibrate_on_library:
                model = self._load_cached(key)
                if model is None:
                    model = calibrate(specialists, retriever)
                    self._store(key, model)
            else:
                model = specialists_card_model(specialists, with_retrieval=retriever is not None)
            self._models[key] = model
            return model

    def combine(self, evidence: Evidence, model: ConsensusModel) -> np.ndarray:
        """Consensus probabilities ``[C]`` for the query of ``evidence`` under ``model``.

        With a case library, each specialist's retrieved cases add their label distribution and
        scale its weight by its local competence there (:mod:`~gsco_runtime.arbiters.retrieved`).
        """
        probs = np.stack([s.probabilities[None, :] for s in evidence.specialists])
        if evidence.retriever is None or any(s.neighbours is None for s in evidence.specialists):
            return model.predict_proba(probs, None)[0]
        dists, competence = retrieval_features(
            evidence.retriever,
            [s.specialist for s in evidence.specialists],
            [[s.neighbours] for s in evidence.specialists if s.neighbours is not None],
            evidence.task.num_classes,
        )
        return model.predict_proba(probs, dists, competence)[0]

    def decide(self, evidence: Evidence) -> Outcome:
        model = self.model_for(tuple(s.specialist for s in evidence.specialists), evidence.retriever)
        probs = self.combine(evidence, model)
        index = int(np.argmax(probs))
        return Outcome(
            label_index=index,
            confidence=float(probs[index]),
            arbiter=f"{NAME} ({NO_GENERALIST})",
            probabilities=probs,
            consensus_weights=model.source,
        )


@register_arbiter(NAME)
def create_consensus(*, calibrate_on_library: bool = True, cache_dir: Path | None = None) -> ConsensusArbiter:
    return ConsensusArbiter(calibrate_on_library=calibrate_on_library, cache_dir=cache_dir)
