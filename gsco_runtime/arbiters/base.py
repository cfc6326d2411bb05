"""Arbiters decide the final label from the evidence; a name registry builds them.

Like timm's ``@register_model`` / ``create_model``: each arbiter module registers a factory under
its name and callers build one with :func:`create_arbiter`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from gsco_common.errors import ConfigError
from gsco_runtime.arbiters.prompts import SimilarCase, SpecialistView
from gsco_runtime.decision import RetrievedCase
from gsco_runtime.pool.specialist import LoadedSpecialist
from gsco_runtime.rad.retriever import Neighbours, Retriever
from gsco_runtime.task import TaskSpec


@dataclass(frozen=True)
class SpecialistEvidence:
    """One specialist's probabilities for the query and the library rows it retrieved."""

    specialist: LoadedSpecialist
    probabilities: np.ndarray
    neighbours: Neighbours | None


@dataclass(frozen=True)
class Evidence:
    """Everything an arbiter may use for one query image."""

    task: TaskSpec
    image: np.ndarray
    specialists: tuple[SpecialistEvidence, ...]
    retriever: Retriever | None
    retrieved: tuple[RetrievedCase, ...]

    def moed_labels(self) -> list[str]:
        """Each specialist's predicted label, in pool order."""
        names = self.task.label_names
        return [names[int(np.argmax(s.probabilities))] for s in self.specialists]

    def specialist_views(self) -> list[SpecialistView]:
        """Per specialist (pool order): its label and the cases *it* retrieved, with their reports."""
        library = self.retriever.library if self.retriever is not None else None
        views = []
        for item, label in zip(self.specialists, self.moed_labels(), strict=True):
            similar: tuple[SimilarCase, ...] = ()
            if library is not None and item.neighbours is not None:
                similar = tuple(
                    SimilarCase(library.label_names[int(library.labels[row])], library.reports[row])
                    for row in item.neighbours.rows.tolist()
                )
            views.append(SpecialistView(label, similar))
        return views


@dataclass(frozen=True)
class Outcome:
    """An arbiter's answer: label index, confidence and how it was reached."""

    label_index: int
    confidence: float
    arbiter: str
    probabilities: np.ndarray | None = None
    generalist: str | None = None
    generalist_answer: str | None = None
    fallback_reason: str | None = None
    consensus_weights: str | None = None
    """Which consensus weights produced ``probabilities`` (the model's ``source``)."""


class Arbiter(Protocol):
    """Chooses the final label; ``uses_generalist`` says whether a generalist takes part."""

    name: str
    uses_generalist: bool

    def decide(self, evidence: Evidence) -> Outcome: ...


ArbiterFactory = Callable[..., Arbiter]
_ARBITERS: dict[str, ArbiterFactory] = {}


def register_arbiter(name: str) -> Callable[[ArbiterFactory], ArbiterFactory]:
    def decorator(factory: ArbiterFactory) -> ArbiterFactory:
        _ARBITERS[name] = factory
        return factory

    return decorator


def list_arbiters() -> list[str]:
    return sorted(_ARBITERS)


def create_arbiter(name: str, **kwargs: Any) -> Arbiter:
    """Build the arbiter registered under ``name``."""
    if name not in _ARBITERS:
        raise ConfigError(f"unknown arbiter {name!r}", hint=f"choose one of {list_arbiters()}")
    return _ARBITERS[name](**kwargs)
