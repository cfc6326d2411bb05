"""Registry fixtures: site keys, an initialised embedded registry, PostgreSQL databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gsco_common.keys import generate_key_pair, load_private_key

LABELS = ["normal", "pneumonia"]
PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
# Set by .ci/run: in CI the PostgreSQL contract tests must run, never turn into skips.
REQUIRE_POSTGRES_ENV = "GSCO_REQUIRE_POSTGRES"


@dataclass(frozen=True)
class SiteKey:
    private: ec.EllipticCurvePrivateKey
    public_path: Path

    @property
    def public_pem(self) -> bytes:
        return self.public_path.read_bytes()


@pytest.fixture(scope="session")
def site_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SiteKey]:
    """Three site key pairs: ``a`` and ``b`` get enrolled, ``stranger`` never is."""
    folder = tmp_path_factory.mktemp("site-keys")
    return {name: make_site_key(folder, name) for name in ("a", "b", "stranger")}


def make_site_key(folder: Path, name: str) -> SiteKey:
    """A new key pair ``folder/name.key`` (passphrase: GSCO_KEY_PASSPHRASE) and ``name.pub``."""
    passphrase = os.environ["GSCO_KEY_PASSPHRASE"].encode()
    generate_key_pair(folder / f"{name}.key", folder / f"{name}.pub", passphrase)
    return SiteKey(load_private_key(folder / f"{name}.key", passphrase), folder / f"{name}.pub")


def skip_without_postgres() -> NoReturn:
    """Skip, with the reason, as PostgreSQL is unreachable; fail instead where CI requires it."""
    reason = "PostgreSQL is not reachable on 127.0.0.1:5432 (user postgres, trust auth)"
    if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_POSTGRES_ENV}=1 says these tests must run (CI sets it)")
    pytest.skip(reason)


@contextmanager
def postgres_database(admin_url: str = PG_ADMIN) -> Iterator[str]:
    """Create a scratch database on the local PostgreSQL, yield its URL, drop it afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    name = f"gsco_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError:
        admin.dispose()
        skip_without_postgres()
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
