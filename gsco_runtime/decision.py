"""The decision the runtime returns: the answer plus every piece of evidence behind it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

AI_LABEL = "AI generated, not for clinical use"
NO_GENERALIST = "no generalist"


@dataclass(frozen=True)
class SpecialistOpinion:
    """One specialist's prediction and where the model came from."""

    model_name: str
    version: str
    site_fingerprint: str
    backbone: str
    label: str
    probability: float
    probabilities: dict[str, float]
    digest: str = ""
    approved_by: str = ""
    approved_at: str = ""


@dataclass(frozen=True)
class RetrievedCase:
    """A similar reference case from the case library."""

    case_id: str
    label: str
    similarity: float
    specialist: str = ""
    """Registered name of the specialist whose embedding found the case; ``similarity`` is the
    cosine in that specialist's embedding space (not comparable across specialists)."""


@dataclass(frozen=True)
class Decision:
    """Final label and confidence, the arbiter that chose it, and the evidence.

    ``confidence`` is the arbiter's probability for ``label``; when the generalist decided it is the
    consensus probability of the label the generalist chose (a generalist gives no probability).
    ``generalist`` is None and ``notes`` contains "no generalist" whenever no generalist took part.
    """

    task_id: str
    label: str
    confidence: float
    arbiter: str
    generalist: str | None
    specialists: tuple[SpecialistOpinion, ...]
    retrieved: tuple[RetrievedCase, ...]
    generalist_answer: str | None
    fallback: bool
    fallback_reason: str | None
    latency_ms: dict[str, float]
    notes: tuple[str, ...] = field(default_factory=tuple)
    consensus_weights: str | None = None
    """Which consensus weights were used and why (e.g. ``card (too few calibration cases)``)."""
    disclaimer: str = AI_LABEL

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["specialists"] = [asdict(s) for s in self.specialists]
        data["retrieved"] = [asdict(c) for c in self.retrieved]
        data["notes"] = list(self.notes)
        return data

    def render(self) -> str:
        """Plain-text rendering for the terminal."""
        lines = [
            f"[{self.disclaimer}]",
            f"task {self.task_id}: {self.label} (confidence {self.confidence:.3f})",
            f"arbiter: {self.arbiter}" + (f", generalist {self.generalist}" if self.generalist else ""),
        ]
        if self.fallback:
            lines.append(f"fallback to consensus: {self.fallback_reason}")
        if self.consensus_weights is not None:
            lines.append(f"consensus weights: {self.consensus_weights}")
        if self.generalist_answer is not None:
            lines.append(f"generalist answer: {self.generalist_answer!r}")
        lines.append("specialists:")
        for op in self.specialists:
            lines.append(
                f"  {op.model_name} v{op.version} ({op.backbone}, site {op.site_fingerprint[:19]}): "
                f"{op.label} p={op.probability:.3f}"
            )
        if self.retrieved:
            lines.append("similar cases:")
            lines.extend(
                f"  {c.case_id}: {c.label} (cosine {c.similarity:.3f} for {c.specialist})"
                for c in self.retrieved
            )
        lines.append("latency ms: " + ", ".join(f"{k} {v:.1f}" for k, v in self.latency_ms.items()))
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)
