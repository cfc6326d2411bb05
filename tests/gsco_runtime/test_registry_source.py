"""The registry source before it has read the registry: its pinned key, and what it refuses to do.

No registry is opened here (a source reads it on its first ``task_state``): the key is a real
central key pair made for the test (``central_key``), the hub home a folder of its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gsco_common.errors import RegistryUnavailableError
from gsco_runtime.pool.registry_source import RegistrySource
from gsco_runtime.pool.source import BundleRef
from registry.config import RegistryConfig
from registry.serving_state import SEQUENCE_FILE
from tests.security.conftest import DOWN_URI


@pytest.fixture
def central_pub(central_key: tuple[ec.EllipticCurvePrivateKey, bytes]) -> bytes:
    return central_key[1]


def _source(tmp_path: Path, central_pub: bytes) -> RegistrySource:
    """A hub whose home pins no key: the central key comes with ``--central-key`` alone."""
    config = RegistryConfig.resolve(home=tmp_path / "hub-home", tracking_uri=DOWN_URI, retries=0)
    return RegistrySource(config, central_key_pem=central_pub, hub_home=tmp_path / "hub-home")


def test_the_central_key_given_explicitly_is_pinned(tmp_path: Path, central_pub: bytes) -> None:
    assert _source(tmp_path, central_pub).central_key_pem == central_pub


def test_no_bundle_is_verified_before_the_trust_store_is_read(tmp_path: Path, central_pub: bytes) -> None:
    source = _source(tmp_path, central_pub)
    with pytest.raises(RegistryUnavailableError) as refused:
        source.verify(BundleRef("task", "model", "1"), tmp_path / "download")
    assert refused.value.message == "the registry's trust store has not been read yet"


def test_a_hub_without_a_cached_statement_admits_nothing(tmp_path: Path, central_pub: bytes) -> None:
    source = _source(tmp_path, central_pub)
    assert source.admit_cached("task", None) == ()
    assert not (tmp_path / "hub-home" / SEQUENCE_FILE).exists()  # no sequence seen, none recorded
