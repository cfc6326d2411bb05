"""Turn a verified bundle's ``card.json`` into the runtime's :class:`SpecialistInfo`."""

from __future__ import annotations

from pathlib import Path

from gsco_common.errors import GscoError, ModelError
from gsco_runtime.pool.source import BundleRef
from gsco_runtime.pool.specialist import SpecialistInfo
from registry.bundle.card import Card
from registry.bundle.layout import bundle_digest, model_content_digest


def read_specialist_info(ref: BundleRef, bundle_dir: Path) -> SpecialistInfo:
    """Card facts plus the bundle digest; ``ModelError`` when the card is invalid or for another task."""
    try:
        card = Card.read(bundle_dir)
        validation = {k: v for k, v in card.headline_metrics().items() if v is not None and k != "ece"}
        info = SpecialistInfo(
            name=ref.name,
            version=ref.version,
            task_id=card.task_id,
            label_names=card.labels,
            modality=card.modality,
            backbone=card.backbone,
            site_fingerprint=card.key_fingerprint,
            model_uid=card.model_uid,
            preprocessing=card.preprocessing,
            tta=card.tta,
            validation=validation,
            validation_upper=card.headline_upper_bounds(),
            training_set_digest=card.training_set_digest,
            training_set_digests=card.training_set_digests,
            model_digest=bundle_digest(bundle_dir),
            model_content_digest=model_content_digest(bundle_dir),
            approved_by=ref.approved_by,
            approved_at=ref.approved_at,
        )
    except GscoError as exc:
        raise ModelError(f"the card of {ref.key} cannot be used: {exc.message}") from exc
    if info.task_id != ref.task_id:
        raise ModelError(f"the card of {ref.key} is for task {info.task_id!r}, not {ref.task_id!r}")
    return info
