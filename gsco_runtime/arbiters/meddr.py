"""The ``meddr`` arbiter: the generalist decides, given the specialists' and retrieved labels.

The GSCo prompt goes with the image to a generalist backend; the free-text answer is parsed to
exactly one option. An unparseable answer, a backend error or a timeout falls back to the
consensus arbiter, and the outcome says so.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import numpy as np

from gsco_common.errors import ConfigError, GeneralistError
from gsco_runtime.arbiters.base import Evidence, Outcome, register_arbiter
from gsco_runtime.arbiters.consensus import ConsensusArbiter
from gsco_runtime.arbiters.parser import parse_answer
from gsco_runtime.arbiters.prompts import gsco_prompt
from gsco_runtime.generalists.base import MEDDR_SYSTEM_MESSAGE, GeneralistBackend

NAME = "meddr"


class MedDrArbiter:
    """Generalist as decision-maker, with the consensus arbiter as the safety net."""

    name = NAME
    uses_generalist = True

    def __init__(
        self,
        backend: GeneralistBackend,
        *,
        fallback: ConsensusArbiter | None = None,
        timeout_s: float = 120.0,
    ) -> None:
        if timeout_s <= 0:
            raise ConfigError("generalist timeout_s must be > 0")
        self.backend = backend
        self.fallback = fallback or ConsensusArbiter()
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="gsco-generalist")

    def ask(self, image: np.ndarray, prompt: str) -> str:
        """The raw answer within ``timeout_s``; raises ``TimeoutError`` or ``GeneralistError``."""
        future: Future[str] = self._executor.submit(
            self.backend.generate, image, prompt, system=MEDDR_SYSTEM_MESSAGE
        )
        try:
            return future.result(timeout=self.timeout_s)
        except FutureTimeout as exc:
            future.cancel()
            raise TimeoutError(f"no answer within {self.timeout_s:g} s") from exc

    def decide(self, evidence: Evidence) -> Outcome:
        consensus = self.fallback.decide(evidence)
        task = evidence.task
        prompt = gsco_prompt(task.modality, task.label_names, evidence.specialist_views())
        answer: str | None = None
        try:
            answer = self.ask(evidence.image, prompt)
        except TimeoutError as exc:
            return self._fallback(consensus, f"generalist timeout: {exc}", None)
        except GeneralistError as exc:
            return self._fallback(consensus, f"generalist error: {exc.message}", None)
        index = parse_answer(answer, task.label_names, task.synonyms)
        if index is None:
            return self._fallback(consensus, "generalist answer names no single option", answer)
        probs = consensus.probabilities
        return Outcome(
            label_index=index,
            confidence=float(probs[index]) if probs is not None else float("nan"),
            arbiter=NAME,
            probabilities=probs,
            generalist=self.backend.name,
            generalist_answer=answer,
            consensus_weights=consensus.consensus_weights,
        )

    def _fallback(self, consensus: Outcome, reason: str, answer: str | None) -> Outcome:
        return Outcome(
            label_index=consensus.label_index,
            confidence=consensus.confidence,
            arbiter=consensus.arbiter,
            probabilities=consensus.probabilities,
            generalist=self.backend.name,
            generalist_answer=answer,
            fallback_reason=reason,
            consensus_weights=consensus.consensus_weights,
        )


@register_arbiter(NAME)
def create_meddr(
    *, backend: GeneralistBackend, fallback: ConsensusArbiter | None = None, timeout_s: float = 120.0
) -> MedDrArbiter:
    return MedDrArbiter(backend, fallback=fallback, timeout_s=timeout_s)
