"""Per-case decision inputs of an evaluation (`gsco-hub evaluate --cases-out FILE.npz`).

What the consensus arbiter saw on each evaluation image: every specialist's probabilities, the
label distribution of the cases each retrieved and its local competence there, with the
consensus' weights and output; and, when the library may calibrate these specialists, the same
inputs on the calibration cases the fit sees. With it the central team can test another decision
rule on its own held-out data without running the specialists again
(``bench/arbiter_alternatives.py`` does so for the shipped studies). The generalist's inputs
(the prompt and the image) are not kept.

The file holds model outputs and labels only: no image, no file name, no case identifier beyond
a case's position (in the evaluated collection, or among the library rows the fit samples). The
retrieved distributions and competence derive from the library's labels, so the file is as
sensitive as the library's labels are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gsco_common.errors import DataError
from gsco_runtime.arbiters.calibration import (
    calibration_cases,
    card_ceiling,
    specialists_card_model,
    unusable_reason,
)
from gsco_runtime.arbiters.retrieved import retrieval_features
from gsco_runtime.arbiters.weights import ConsensusModel
from gsco_runtime.pool.specialist import LoadedSpecialist
from gsco_runtime.rad.retriever import Retriever
from registry.input_limits import CORRUPT_NPZ_ERRORS

FORMAT_VERSION = 1


@dataclass(frozen=True)
class DecisionInputs:
    """What the arbiters see on ``N`` cases.

    Labels ``[N]``, probabilities ``[S, N, C]``, retrieved label distributions ``[S, N, C]`` and
    local competence ``[S, N]`` (both None without a case library).
    """

    labels: np.ndarray
    probabilities: np.ndarray
    retrieved: np.ndarray | None = None
    competence: np.ndarray | None = None


@dataclass(frozen=True)
class CaseInputs:
    """One evaluation's decision inputs, the consensus it gave, and what its weights came from."""

    specialists: tuple[str, ...]
    label_names: tuple[str, ...]
    evaluation: DecisionInputs
    consensus: np.ndarray
    model: ConsensusModel
    card_weights: np.ndarray
    ceilings: np.ndarray
    calibration: DecisionInputs | None = None

    def ceiling_pairs(self) -> list[tuple[str, float | None]]:
        """The card ceilings as the fit takes them: per specialist, its name and the value or None."""
        return [
            (name, None if np.isnan(value) else float(value))
            for name, value in zip(self.specialists, self.ceilings, strict=True)
        ]


def collect_case_inputs(
    specialists: Sequence[LoadedSpecialist],
    retriever: Retriever | None,
    evaluated: DecisionInputs,
    consensus: np.ndarray,
    model: ConsensusModel,
    *,
    calibrates: bool,
) -> CaseInputs:
    """The inputs of one evaluation, with the calibration cases' when the fit sees them.

    That is when ``calibrates`` (the arbiter calibrates on a library at all) and the library may
    calibrate these specialists (:func:`~gsco_runtime.arbiters.calibration.unusable_reason`).
    """
    label_names = specialists[0].info.label_names
    calibration = None
    if calibrates and retriever is not None and unusable_reason(specialists, retriever.library) is None:
        cases = calibration_cases(specialists, retriever)
        dists, competence = retrieval_features(retriever, specialists, cases.neighbours, len(label_names))
        calibration = DecisionInputs(cases.labels, cases.probabilities, dists, competence)
    card = specialists_card_model(specialists, with_retrieval=retriever is not None)
    return CaseInputs(
        specialists=tuple(f"{s.info.name} v{s.info.version}" for s in specialists),
        label_names=tuple(label_names),
        evaluation=evaluated,
        consensus=consensus,
        model=model,
        card_weights=card.specialist_weights,
        ceilings=ceilings_array([card_ceiling(s) for s in specialists]),
        calibration=calibration,
    )


def _arrays(prefix: str, inputs: DecisionInputs) -> dict[str, np.ndarray]:
    arrays = {f"{prefix}labels": inputs.labels, f"{prefix}probabilities": inputs.probabilities}
    if inputs.retrieved is not None and inputs.competence is not None:
        arrays |= {f"{prefix}retrieved": inputs.retrieved, f"{prefix}competence": inputs.competence}
    return arrays


def save_case_inputs(path: Path, cases: CaseInputs) -> Path:
    """Write ``cases`` as one compressed ``.npz`` (no pickled objects)."""
    model = cases.model
    arrays = {
        "format_version": np.asarray(FORMAT_VERSION),
        "specialists": np.asarray(cases.specialists, dtype=str),
        "label_names": np.asarray(cases.label_names, dtype=str),
        "consensus": cases.consensus,
        "specialist_weights": model.specialist_weights,
        "retrieval_weights": model.retrieval_weights,
        "bias": model.bias,
        "source": np.asarray(model.source, dtype=str),
        "card_weights": cases.card_weights,
        "ceilings": cases.ceilings,
        **_arrays("", cases.evaluation),
    }
    if cases.calibration is not None:
        arrays |= _arrays("calibration_", cases.calibration)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.savez_compressed(handle, **arrays)
    return path


def _inputs(data: dict[str, np.ndarray], prefix: str) -> DecisionInputs:
    return DecisionInputs(
        data[f"{prefix}labels"],
        data[f"{prefix}probabilities"],
        data.get(f"{prefix}retrieved"),
        data.get(f"{prefix}competence"),
    )


def load_case_inputs(path: Path) -> CaseInputs:
    """Read a file of :func:`save_case_inputs`; :class:`DataError` when it is not one."""
    not_ours = f"{path.name} is not a case-inputs file of `gsco-hub evaluate --cases-out`"
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError(not_ours)
        with archive:
            data = {key: archive[key] for key in archive.files}
        version = int(data["format_version"])
    except (*CORRUPT_NPZ_ERRORS, TypeError, KeyError) as error:
        raise DataError(not_ours) from error
    if version != FORMAT_VERSION:
        raise DataError(f"{path.name} has case-inputs format {version}; this version reads {FORMAT_VERSION}")
    try:
        model = ConsensusModel(
            data["specialist_weights"], data["retrieval_weights"], data["bias"], source=str(data["source"])
        )
        return CaseInputs(
            specialists=tuple(str(name) for name in data["specialists"]),
            label_names=tuple(str(name) for name in data["label_names"]),
            evaluation=_inputs(data, ""),
            consensus=data["consensus"],
            model=model,
            card_weights=data["card_weights"],
            ceilings=data["ceilings"],
            calibration=_inputs(data, "calibration_") if "calibration_labels" in data else None,
        )
    except KeyError as error:
        raise DataError(f"{path.name} lacks {error.args[0]!r}: {not_ours}") from error


def ceilings_array(ceilings: Sequence[tuple[str, float | None]]) -> np.ndarray:
    """Card ceilings as floats, NaN where a card has none."""
    return np.asarray([np.nan if value is None else value for _, value in ceilings], dtype=np.float64)
