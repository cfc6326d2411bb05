"""Local competence: a specialist counts for what it got right on the cases it retrieved (known answers)."""

from __future__ import annotations

import numpy as np
import pytest

from gsco_runtime.arbiters.retrieved import local_competence, neighbour_labels, neighbour_rows
from gsco_runtime.arbiters.weights import ConsensusModel
from gsco_runtime.rad.retriever import Neighbours

# the specialist's own predictions on a four-case library, and the library's labels
OWN = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4]])  # predicts 0, 1, 1, 0
LABELS = np.array([0, 0, 1, 1])  # so it is right on rows 0 and 2 only


def test_neighbour_rows_and_labels_are_padded_with_minus_one() -> None:
    found = [Neighbours(np.array([2, 0]), np.array([0.9, 0.5])), Neighbours(np.array([], int), np.array([]))]
    assert neighbour_rows(found, 3).tolist() == [[2, 0, -1], [-1, -1, -1]]
    labels, sims = neighbour_labels(found, LABELS, 3)
    assert labels.tolist() == [[1, 0, -1], [-1, -1, -1]]
    assert sims.tolist() == [[0.9, 0.5, 0.0], [0.0, 0.0, 0.0]]


def test_competence_is_the_laplace_smoothed_share_right_among_retrieved_cases() -> None:
    rows = np.array([[0, 2, -1], [1, 3, 0], [-1, -1, -1], [0, 2, 2]])
    # right: 2 of 2 -> 3/4; 1 of 3 -> 2/5; none retrieved -> 1/2; 3 of 3 -> 4/5
    assert local_competence(rows, OWN, LABELS) == pytest.approx([0.75, 0.4, 0.5, 0.8])


def test_a_specialist_wrong_on_the_retrieved_cases_loses_the_decision_there() -> None:
    model = ConsensusModel(np.array([0.6, 0.4]), np.zeros(2), np.zeros(2), source="test")
    probs = np.array([[[0.8, 0.2]], [[0.2, 0.8]]])  # A says class 0, B says class 1
    assert model.predict_proba(probs, None).argmax(axis=1).tolist() == [0]  # A weighs more
    # around this query A was right on 0 of 10 retrieved cases, B on 10 of 10
    competence = np.array([[1 / 12], [11 / 12]])
    pooled = model.predict_proba(probs, None, competence)
    assert pooled.argmax(axis=1).tolist() == [1]
    # log-odds of class 1: 0.6/12 * log(0.2/0.8) + 0.4*11/12 * log(0.8/0.2) = (4.4 - 0.6) / 12 * log 4
    assert np.log(pooled[0, 1] / pooled[0, 0]) == pytest.approx(3.8 / 12 * np.log(4.0))
    # equal competence leaves the decision to the weights
    assert model.predict_proba(probs, None, np.array([[0.7], [0.7]])).argmax(axis=1).tolist() == [0]
