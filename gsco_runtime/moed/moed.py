"""MoED: every specialist of the task predicts (label, probability) for the query image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gsco_runtime.pool.specialist import LoadedSpecialist


@dataclass(frozen=True)
class SpecialistPrediction:
    """One specialist's class probabilities ``[C]`` and embedding ``[D]`` for one image."""

    specialist: LoadedSpecialist
    probabilities: np.ndarray
    embedding: np.ndarray

    @property
    def label_index(self) -> int:
        return int(np.argmax(self.probabilities))


def predict_all(specialists: Sequence[LoadedSpecialist], image: np.ndarray) -> list[SpecialistPrediction]:
    """Ask every specialist; each call joins that specialist's micro-batch with concurrent requests."""
    predictions = []
    for specialist in specialists:
        probs, embedding = specialist.predict(image)
        predictions.append(SpecialistPrediction(specialist, probs, embedding))
    return predictions
