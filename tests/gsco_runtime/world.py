"""The registry world of the runtime and hub tests: real registry, sites and signed bundles.

The builder lives in :mod:`bench.world`, shared with ``bench/runtime.py``. The tests serve the
real specialists of ``tests/site_bundle.py`` in it (``publish_real``); world-made bundles only in
the backbone parity test (``test_preprocess_parity.py``).
"""

from __future__ import annotations

from bench.world import LABELS, MODALITY, World, exported, make_world, sample_images

__all__ = ["LABELS", "MODALITY", "World", "exported", "make_world", "sample_images"]
