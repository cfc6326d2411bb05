"""Helpers shared by the federation tests."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from flwr.app import Message, Metadata, RecordDict

from hub.federation.partition import write_site_slices
from specialist.federation.flower import make_message

IMAGES_PER_SITE = 250


def site_slices(data: Path, folder: Path, sites: int) -> list[Path]:
    """``sites`` non-IID slices of a few hundred images each."""
    return write_site_slices(data, folder, sites, seed=1, limit=IMAGES_PER_SITE * sites)


def labels_of(path: Path) -> np.ndarray:
    with np.load(path) as archive:
        return archive["train_labels"].reshape(-1)


def hub_message(kind: str, content: RecordDict, run_id: int = 1, node_id: int = 7) -> Message:
    """A message as the hub's ServerApp sends it to site node ``node_id``."""
    metadata = Metadata(
        run_id=run_id,
        message_id=f"{kind}-1",
        src_node_id=0,
        dst_node_id=node_id,
        reply_to_message_id="",
        group_id="1",
        created_at=time.time(),
        ttl=3600,
        message_type=kind,
    )
    return make_message(metadata, content)
