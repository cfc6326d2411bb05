"""Back up and restore the topology's registry and hub state (``topology backup|restore DIR``).

A backup is one folder: ``pg_dump -Fc`` of the MLflow/registry database and of the hub database,
a copy of the artifact store (bundles), MLflow's auth database, the central key folder and the
run's secrets (the accounts in ``auth.db`` and the hubs' credentials must match), and
``manifest.json`` with each file's SHA-256. The databases are dumped *before* the artifact store
is copied: MLflow writes a bundle's files before the version row that names them, so every
version in the dump has its files in the copy.

Restore checks every checksum before touching anything, stops the hubs and the MLflow server,
recreates the two databases from the dumps, puts the files back, and starts the services again.
The hubs' caches are not backed up: they re-download and re-verify what the restored registry
serves.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from gsco_common.errors import ConfigError, TopologyError

BACKUP_FORMAT = "gsco-topology-backup-1"
MANIFEST = "manifest.json"
MLFLOW_DUMP = "mlflow.dump"
HUB_DUMP = "hub.dump"
ARTIFACTS = "artifacts"
AUTH_DB = "auth.db"
CENTRAL_KEYS = "central-keys"
SECRETS = "secrets"


@dataclass(frozen=True)
class StatePaths:
    """Where the files a backup holds live in a run's state folder."""

    artifacts: Path
    auth_db: Path
    central_keys: Path
    secrets: Path

    @classmethod
    def of(cls, state_dir: Path, central_home: Path) -> StatePaths:
        mlflow = state_dir / "mlflow"
        return cls(mlflow / "artifacts", mlflow / "auth.db", central_home / "keys", state_dir / "secrets")


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A SQLAlchemy URL as a libpq URI for pg_dump/pg_restore; the password goes in PGPASSWORD."""
    parsed = make_url(url)
    env = {**os.environ}
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _pg(tool: str, args: list[str], url: str) -> None:
    binary = shutil.which(tool)
    if binary is None:
        raise ConfigError(f"{tool} is not installed", hint="install the PostgreSQL client tools")
    uri, env = _libpq(url)
    done = subprocess.run(  # noqa: S603  (fixed tool, arguments built here)
        [binary, *args, "--dbname", uri], env=env, capture_output=True, text=True, timeout=1800
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise TopologyError(f"{tool} failed (exit {done.returncode})", hint=last)


def _files(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``root``."""
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        found[path.relative_to(root).as_posix()] = digest.hexdigest()
    return found


def _copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database (its online backup API, not a file copy)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def create_backup(out_dir: Path, *, mlflow_db_url: str, hub_db_url: str, paths: StatePaths) -> dict:
    """Write a backup of the run into ``out_dir`` (new or empty, made 0700); returns the manifest."""
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ConfigError(f"the backup folder {out_dir} is not empty", hint="name a new folder")
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    out_dir.chmod(0o700)
    _pg("pg_dump", ["--format=custom", "--no-owner", "--file", str(out_dir / MLFLOW_DUMP)], mlflow_db_url)
    _pg("pg_dump", ["--format=custom", "--no-owner", "--file", str(out_dir / HUB_DUMP)], hub_db_url)
    if not paths.artifacts.is_dir():
        raise ConfigError(
            "object_store: only the local artifact folder is backed up here",
            hint="back up the S3 bucket with the object store's own tools (versioning, replication)",
        )
    shutil.copytree(paths.artifacts, out_dir / ARTIFACTS)
    _copy_sqlite(paths.auth_db, out_dir / AUTH_DB)
    shutil.copytree(paths.central_keys, out_dir / CENTRAL_KEYS)
    shutil.copytree(paths.secrets, out_dir / SECRETS)
    manifest = {
        "format": BACKUP_FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": _files(out_dir),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def check_backup(backup_dir: Path) -> dict:
    """The manifest of ``backup_dir`` once every file matches it; else name the first that does not."""
    path = backup_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        raise ConfigError(f"{backup_dir} is not a topology backup (no readable {MANIFEST})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BACKUP_FORMAT:
        raise ConfigError(f"{backup_dir} is not a topology backup (format is not {BACKUP_FORMAT})")
    present = {name: sha for name, sha in _files(backup_dir).items() if name != MANIFEST}
    expected = manifest.get("files", {})
    for name in sorted(set(present) | set(expected)):
        if present.get(name) != expected.get(name):
            state = "changed" if name in present and name in expected else "missing"
            state = "not in the manifest" if name not in expected else state
            raise ConfigError(f"backup file {name} is {state}", hint="restore from an intact backup")
    return manifest


def _replace_tree(source: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)


def restore_files(backup_dir: Path, paths: StatePaths) -> None:
    """Put the backed-up files in place (services stopped); the secrets keep mode 0600."""
    _replace_tree(backup_dir / ARTIFACTS, paths.artifacts)
    shutil.copyfile(backup_dir / AUTH_DB, paths.auth_db)
    _replace_tree(backup_dir / CENTRAL_KEYS, paths.central_keys)
    _replace_tree(backup_dir / SECRETS, paths.secrets)
    paths.secrets.chmod(0o700)
    for secret in paths.secrets.iterdir():
        secret.chmod(0o600)


def restore_database(dump: Path, db_url: str) -> None:
    """Load a ``pg_dump -Fc`` file into the (new, empty) database at ``db_url``."""
    _pg("pg_restore", ["--no-owner", "--exit-on-error", str(dump)], db_url)
