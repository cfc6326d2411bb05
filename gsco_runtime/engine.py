"""The GSCo runtime: one query = MoED + RAD + arbiter, on a consistent snapshot of the pool."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gsco_common.errors import RuntimeServiceError
from gsco_runtime.arbiters import create_arbiter
from gsco_runtime.arbiters.base import Arbiter, Evidence, Outcome, SpecialistEvidence
from gsco_runtime.arbiters.consensus import ConsensusArbiter
from gsco_runtime.arbiters.prompts import report_prompt
from gsco_runtime.cases.library import StoredLibraryDigests, load_library
from gsco_runtime.config import RuntimeSettings
from gsco_runtime.decision import AI_LABEL, NO_GENERALIST, Decision, SpecialistOpinion
from gsco_runtime.generalists.base import MEDDR_SYSTEM_MESSAGE, GeneralistBackend
from gsco_runtime.image_checks import refuse_degenerate
from gsco_runtime.moed.moed import predict_all
from gsco_runtime.pool.cache import BundleCache
from gsco_runtime.pool.pool import BatchSettings, PoolSnapshot, SpecialistPool
from gsco_runtime.pool.source import BundleSource
from gsco_runtime.pool.specialist import LoadedSpecialist
from gsco_runtime.pool.threads import ThreadBudget
from gsco_runtime.rad.retriever import Neighbours, Retriever, fuse_by_rank
from gsco_runtime.task import TaskSpec, load_task_definitions, resolve_task


@dataclass(frozen=True)
class Report:
    """A generated report, the models behind it and the AI label."""

    task_id: str
    text: str
    generalist: str
    specialists: tuple[SpecialistOpinion, ...]
    latency_ms: dict[str, float]
    disclaimer: str = AI_LABEL


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


class GscoRuntime:
    """Diagnoses images with the approved specialists of a task, retrieval and an arbiter."""

    def __init__(
        self,
        source: BundleSource,
        settings: RuntimeSettings,
        *,
        generalist: GeneralistBackend | None = None,
    ) -> None:
        self.settings = settings
        self.budget = ThreadBudget(settings.threads)
        self.generalist = generalist
        self.consensus = ConsensusArbiter(cache_dir=settings.resolved_cache_dir)
        self.arbiter: Arbiter = (
            create_arbiter(
                "meddr", backend=generalist, fallback=self.consensus, timeout_s=settings.generalist_timeout_s
            )
            if generalist is not None
            else self.consensus
        )
        self._definitions = load_task_definitions(settings.home)
        self._retrievers: dict[str, Retriever | None] = {}
        self._retriever_lock = threading.Lock()
        self._library_digests = StoredLibraryDigests(settings.home)
        self.pool = SpecialistPool(
            source,
            BundleCache(settings.resolved_cache_dir / "pool"),
            poll_interval_s=settings.poll_interval_s,
            batching=BatchSettings(settings.max_batch, settings.max_wait_ms / 1000.0),
            budget=self.budget,
            on_loaded=self._prepare,
            on_swap=self._on_swap,
        )

    def start(self, task_ids: list[str]) -> None:
        """Load the tasks' specialists now and keep watching the registry in the background."""
        self.pool.watch(task_ids)
        self.pool.start()

    def close(self) -> None:
        """Stop polling; sessions are freed once the last request holding them returns."""
        self.pool.stop()

    def refresh_case_libraries(self) -> list[str]:
        """Forget each task's retriever whose stored library changed since it was read.

        A ``cases import`` while the hub runs replaces the stored library (or creates the first);
        the next request reads the new one and builds or loads its indexes. Returns those tasks.
        """
        with self._retriever_lock:
            stale = [
                task_id
                for task_id, retriever in self._retrievers.items()
                if self._library_digests.digest(task_id)
                != (retriever.library.digest if retriever is not None else None)
            ]
            for task_id in stale:
                del self._retrievers[task_id]
        return stale

    def retriever(self, task_id: str) -> Retriever | None:
        """The task's retriever over its case library (None when no library was imported)."""
        with self._retriever_lock:
            if task_id not in self._retrievers:
                library = load_library(self.settings.home, task_id)
                self._retrievers[task_id] = (
                    Retriever(
                        library,
                        self.settings.resolved_cache_dir,
                        self.settings.index_settings,
                        self.settings.k,
                    )
                    if library is not None
                    else None
                )
            return self._retrievers[task_id]

    def _prepare(self, specialist: LoadedSpecialist) -> None:
        """Build (or load) the specialist's retrieval index before it starts serving."""
        retriever = self.retriever(specialist.info.task_id)
        if retriever is not None:
            if retriever.library.label_names != specialist.info.label_names:
                raise RuntimeServiceError(
                    f"the case library of task {specialist.info.task_id!r} has other labels than the card",
                    hint="import the case library again with the task's labels",
                )
            retriever.ensure(specialist.info.model_digest, specialist.predict_many)

    def _on_swap(self, snapshot: PoolSnapshot) -> None:
        """A new set of specialists serves the task: free the retrieval indexes of those that left.

        Then calibrate (or load) the consensus weights for the new set before requests come.
        """
        retriever = self.retriever(snapshot.task_id)
        if retriever is not None:
            retriever.retain(specialist.info.model_digest for specialist in snapshot.specialists)
        if snapshot.specialists:
            self.consensus.model_for(snapshot.specialists, retriever)

    def task_spec(self, snapshot: PoolSnapshot) -> TaskSpec:
        cards = [(s.info.label_names, s.info.modality) for s in snapshot.specialists]
        return resolve_task(snapshot.task_id, cards, self._definitions)

    def evidence(self, image: np.ndarray, snapshot: PoolSnapshot, latency: dict[str, float]) -> Evidence:
        """Run MoED and RAD for one image on one snapshot (a degenerate image is refused first)."""
        refuse_degenerate(image)
        start = time.perf_counter()
        predictions = predict_all(snapshot.specialists, image)
        latency["moed"] = _ms(start)
        start = time.perf_counter()
        retriever = self.retriever(snapshot.task_id)
        with self.budget.slot():  # FAISS threads share the budget instead of competing with sessions
            neighbours: list[Neighbours | None] = [
                retriever.search(p.specialist.info.model_digest, p.specialist.predict_many, p.embedding)
                if retriever is not None
                else None
                for p in predictions
            ]
        latency["rad"] = _ms(start)
        return assemble_evidence(
            self.task_spec(snapshot),
            image,
            [(p.specialist, p.probabilities, n) for p, n in zip(predictions, neighbours, strict=True)],
            retriever,
        )

    def diagnose(self, image: np.ndarray, task_id: str, *, use_generalist: bool = True) -> Decision:
        """One decision for one image; the pool snapshot taken here serves the whole request.

        ``use_generalist=False`` lets the consensus arbiter decide even when a generalist is set.
        """
        arbiter = self.arbiter if use_generalist else self.consensus
        with self.pool.inflight:
            total = time.perf_counter()
            snapshot = self.pool.snapshot(task_id)
            latency: dict[str, float] = {}
            evidence = self.evidence(image, snapshot, latency)
            start = time.perf_counter()
            outcome = arbiter.decide(evidence)
            latency["arbiter"] = _ms(start)
            latency["total"] = _ms(total)
        return _decision(evidence, outcome, latency)

    def report(self, image: np.ndarray, task_id: str) -> Report:
        """A report written by the generalist from the image and the specialists' findings."""
        if self.generalist is None:
            raise RuntimeServiceError(
                "report generation needs a generalist",
                hint="configure one with --generalist openai|transformers",
            )
        with self.pool.inflight:
            total = time.perf_counter()
            latency: dict[str, float] = {}
            evidence = self.evidence(image, self.pool.snapshot(task_id), latency)
            opinions = _opinions(evidence)
            views = [
                replace(view, probability=opinion.probability)
                for view, opinion in zip(evidence.specialist_views(), opinions, strict=True)
            ]
            prompt = report_prompt(evidence.task.modality, views)
            start = time.perf_counter()
            text = self.generalist.generate(image, prompt, system=MEDDR_SYSTEM_MESSAGE)
            latency["generalist"] = _ms(start)
            latency["total"] = _ms(total)
        return Report(task_id, text.strip(), self.generalist.name, opinions, latency)

    def status(self) -> dict[str, Any]:
        """Pool and registry state, thread budget, arbiter and case libraries."""
        status = self.pool.status().to_dict()
        status["threads"] = self.budget.threads
        status["arbiter"] = self.arbiter.name
        status["generalist"] = self.generalist.name if self.generalist else NO_GENERALIST
        status["case_libraries"] = {
            task: (len(r.library) if r is not None else 0) for task, r in sorted(self._retrievers.items())
        }
        return status


def assemble_evidence(
    task: TaskSpec,
    image: np.ndarray,
    outputs: list[tuple[LoadedSpecialist, np.ndarray, Neighbours | None]],
    retriever: Retriever | None,
) -> Evidence:
    """Evidence from each specialist's probabilities and neighbours (also used by evaluation)."""
    return Evidence(
        task=task,
        image=image,
        specialists=tuple(SpecialistEvidence(s, probs, found) for s, probs, found in outputs),
        retriever=retriever,
        retrieved=fuse_by_rank([(s.info.name, found) for s, _, found in outputs], retriever),
    )


def _opinions(evidence: Evidence) -> tuple[SpecialistOpinion, ...]:
    names = evidence.task.label_names
    opinions = []
    for item in evidence.specialists:
        info = item.specialist.info
        index = int(np.argmax(item.probabilities))
        opinions.append(
            SpecialistOpinion(
                model_name=info.name,
                version=info.version,
                site_fingerprint=info.site_fingerprint,
                backbone=info.backbone,
                label=names[index],
                probability=round(float(item.probabilities[index]), 6),
                probabilities={n: round(float(p), 6) for n, p in zip(names, item.probabilities, strict=True)},
                digest=info.model_digest,
                approved_by=info.approved_by,
                approved_at=info.approved_at,
            )
        )
    return tuple(opinions)


def _decision(evidence: Evidence, outcome: Outcome, latency: dict[str, float]) -> Decision:
    notes: list[str] = []
    decided_by_generalist = outcome.generalist is not None and outcome.fallback_reason is None
    if not decided_by_generalist:
        notes.append(NO_GENERALIST + (": the generalist did not decide" if outcome.generalist else ""))
    if evidence.retriever is None:
        notes.append("no case library: decided without retrieved cases")
    return Decision(
        task_id=evidence.task.task_id,
        label=evidence.task.label_names[outcome.label_index],
        confidence=round(outcome.confidence, 6),
        arbiter=outcome.arbiter,
        generalist=outcome.generalist,
        specialists=_opinions(evidence),
        retrieved=evidence.retrieved,
        generalist_answer=outcome.generalist_answer,
        fallback=outcome.fallback_reason is not None,
        fallback_reason=outcome.fallback_reason,
        latency_ms=latency,
        notes=tuple(notes),
        consensus_weights=outcome.consensus_weights,
    )
