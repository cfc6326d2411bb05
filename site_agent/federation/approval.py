"""The site's allow-list of Flower apps it agreed to run.

A Flower app reaches a SuperNode as a FAB (a zip of the app's project folder). Its SHA-256 is
what the site operator approves after reading the app: ``site-agent federation approve`` records
it in ``SITE_DIR/federation/approved_apps.json``, and the task gate (:mod:`.gate`) runs a message
only when the SHA-256 of the FAB bytes it received is on the list. Anything else, a different
app or the same app with one changed byte, is refused before any of its code is imported.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import tomllib
import zipfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from gsco_common.errors import ConfigError, FederationError
from specialist.federation.flower import build_fab_from_disk

APPROVALS_FILE = "approved_apps.json"
FEDERATION_DIR = "federation"
_HASH_PATTERN = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ApprovedApp:
    """One approved Flower app: its FAB hash and what the operator saw when approving it."""

    fab_hash: str
    app_id: str
    version: str
    approved_at: str


def approvals_path(site_dir: Path) -> Path:
    return site_dir / FEDERATION_DIR / APPROVALS_FILE


def fab_hash_of(app: Path) -> tuple[str, str, str]:
    """``(sha256, app id, version)`` of a ``.fab`` file or of a Flower app project folder.

    A folder is packaged exactly as ``flwr run`` packages it (Flower's own builder, fixed zip
    timestamps), so the hash equals the one the SuperNode receives.
    """
    if app.is_dir():
        try:
            content = build_fab_from_disk(app)
        except ValueError as exc:
            raise ConfigError(f"not a valid Flower app folder: {exc}") from None
    elif app.is_file():
        content = app.read_bytes()
    else:
        raise ConfigError(f"no Flower app at {app.name}", hint="pass the app folder or its .fab file")
    app_id, version = _fab_identity(content)
    return hashlib.sha256(content).hexdigest(), app_id, version


def _fab_identity(content: bytes) -> tuple[str, str]:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            config = tomllib.loads(archive.read("pyproject.toml").decode("utf-8"))
        publisher = config["tool"]["flwr"]["app"]["publisher"]
        return f"{publisher}/{config['project']['name']}", str(config["project"]["version"])
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        raise ConfigError("not a Flower app bundle (.fab): no readable pyproject.toml inside") from None


class ApprovalStore:
    """Read and change the allow-list; re-read on every check so approvals apply without a restart."""

    def __init__(self, site_dir: Path) -> None:
        self.path = approvals_path(site_dir)

    def list(self) -> list[ApprovedApp]:
        if not self.path.is_file():
            return []
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return [ApprovedApp(**entry) for entry in raw["approved"]]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise FederationError(
                f"{FEDERATION_DIR}/{APPROVALS_FILE} is damaged",
                hint="remove it and approve the apps again with `site-agent federation approve`",
            ) from None

    def is_approved(self, fab_hash: str) -> bool:
        return any(entry.fab_hash == fab_hash for entry in self.list())

    def approve(self, fab_hash: str, app_id: str = "", version: str = "") -> ApprovedApp:
        fab_hash = fab_hash.strip().lower()
        if not _HASH_PATTERN.match(fab_hash):
            raise ConfigError("an app hash is 64 hexadecimal characters (SHA-256 of the .fab file)")
        entries = [entry for entry in self.list() if entry.fab_hash != fab_hash]
        approved = ApprovedApp(
            fab_hash=fab_hash,
            app_id=app_id,
            version=version,
            approved_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        self._write([*entries, approved])
        return approved

    def revoke(self, fab_hash: str) -> bool:
        entries = self.list()
        kept = [entry for entry in entries if entry.fab_hash != fab_hash.strip().lower()]
        self._write(kept)
        return len(kept) != len(entries)

    def _write(self, entries: list[ApprovedApp]) -> None:
        """Write atomically: a crash mid-write never leaves a half list that approves too much."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"approved": [asdict(entry) for entry in entries]}, indent=2) + "\n"
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".approved-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, self.path)
