"""Tasks and enrolled sites: what may be published, and by whom.

A task fixes the ordered label set every bundle of it must carry. A site is enrolled with its
public key; only bundles signed by an enrolled, active key are accepted, and revoking a site makes
every bundle it signed untrusted at the hub.

Key rotation (:func:`rotate_site_key`) gives a site a new current key and keeps the old one as
*retired*: nothing new may be published with it, but the bundles it signed stay trusted until the
central team revokes that key (:func:`revoke_retired_key`) or the whole site. Keys are never
reused, by the same or another site.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gsco_common.errors import AuthError, KeyMaterialError, RegistryError
from gsco_common.ids import TASK_ID
from gsco_common.keys import fingerprint, load_public_key_pem
from registry.store.tables import RetiredKeyRow, SiteRow, TaskRow

SITE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
ACTIVE = "active"
REVOKED = "revoked"
RETIRED = "retired"


@dataclass(frozen=True)
class TaskInfo:
    task_id: str
    labels: tuple[str, ...]
    modality: str

    def to_dict(self) -> dict[str, object]:
        return {"task": self.task_id, "labels": list(self.labels), "modality": self.modality}


@dataclass(frozen=True)
class SiteInfo:
    name: str
    fingerprint: str
    status: str
    public_key_pem: str

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "fingerprint": self.fingerprint, "status": self.status}


@dataclass(frozen=True)
class RetiredKey:
    site: str
    fingerprint: str
    status: str
    public_key_pem: str

    def to_dict(self) -> dict[str, object]:
        return {"site": self.site, "fingerprint": self.fingerprint, "status": self.status}


def _task(row: TaskRow) -> TaskInfo:
    return TaskInfo(row.task_id, tuple(row.labels), row.modality)


def _site(row: SiteRow) -> SiteInfo:
    return SiteInfo(row.name, row.fingerprint, row.status, row.public_key_pem)


def create_task(session: Session, task_id: str, labels: Sequence[str], modality: str) -> TaskInfo:
    if not TASK_ID.match(task_id):
        raise RegistryError(
            f"invalid task id {task_id!r}", hint="use letters, digits, '.', '-' or '_' (max 64)"
        )
    clean = [label.strip() for label in labels if label.strip()]
    if len(clean) < 2 or len(set(clean)) != len(clean):
        raise RegistryError(
            "a task needs at least two distinct labels", hint="e.g. --labels normal,pneumonia"
        )
    if not modality.strip():
        raise RegistryError("the task needs a modality", hint='e.g. --modality "chest X-ray"')
    if session.get(TaskRow, task_id) is not None:
        raise RegistryError(
            f"task {task_id!r} already exists", hint="tasks are immutable; create a new task id"
        )
    row = TaskRow(task_id=task_id, labels=clean, modality=modality.strip(), created_at=datetime.now(UTC))
    session.add(row)
    return _task(row)


def get_task(session: Session, task_id: str) -> TaskInfo:
    row = session.get(TaskRow, task_id)
    if row is None:
        raise RegistryError(
            f"unknown task {task_id!r}", hint="the central team creates it with `gsco-registry tasks create`"
        )
    return _task(row)


def has_task(session: Session, task_id: str) -> bool:
    return session.get(TaskRow, task_id) is not None


def list_tasks(session: Session) -> list[TaskInfo]:
    return [_task(row) for row in session.scalars(select(TaskRow).order_by(TaskRow.task_id))]


def _new_key_fingerprint(session: Session, name: str, public_key_pem: bytes) -> str:
    """The fingerprint of a key never enrolled before (as any site's current or retired key)."""
    try:
        key = load_public_key_pem(public_key_pem)
    except KeyMaterialError as exc:
        raise KeyMaterialError(
            f"cannot enroll {name}: {exc.message}", hint="pass the site's keys/site.pub"
        ) from None
    fp = fingerprint(key)
    clash = session.scalars(select(SiteRow).where(SiteRow.fingerprint == fp)).first()
    if clash is not None:
        raise RegistryError(f"this public key is already enrolled as site {clash.name!r}")
    retired = session.get(RetiredKeyRow, fp)
    if retired is not None:
        raise RegistryError(
            f"this public key was an earlier key of site {retired.site!r}", hint="keys are never reused"
        )
    return fp


def enroll_site(session: Session, name: str, public_key_pem: bytes) -> SiteInfo:
    if not SITE_NAME.match(name):
        raise RegistryError(
            f"invalid site name {name!r}", hint="use lowercase letters, digits and '-' (max 63)"
        )
    fp = _new_key_fingerprint(session, name, public_key_pem)
    if session.get(SiteRow, name) is not None:
        raise RegistryError(
            f"site {name!r} is already enrolled", hint="sites and keys are never reused; pick a new name"
        )
    row = SiteRow(
        name=name,
        fingerprint=fp,
        public_key_pem=public_key_pem.decode("ascii"),
        status=ACTIVE,
        enrolled_at=datetime.now(UTC),
    )
    session.add(row)
    return _site(row)


def list_sites(session: Session) -> list[SiteInfo]:
    return [_site(row) for row in session.scalars(select(SiteRow).order_by(SiteRow.name))]


def revoke_site(session: Session, name: str) -> SiteInfo:
    row = session.get(SiteRow, name)
    if row is None:
        raise RegistryError(f"unknown site {name!r}", hint="see `gsco-registry sites list`")
    if row.status == REVOKED:
        raise RegistryError(f"site {name!r} is already revoked")
    row.status = REVOKED
    row.revoked_at = datetime.now(UTC)
    return _site(row)


def _active_row(session: Session, name: str) -> SiteRow:
    row = session.get(SiteRow, name)
    if row is None:
        raise RegistryError(f"unknown site {name!r}", hint="see `gsco-registry sites list`")
    if row.status == REVOKED:
        raise RegistryError(f"site {name!r} is revoked", hint="enroll the site under a new name")
    return row


def rotate_site_key(session: Session, name: str, public_key_pem: bytes) -> tuple[SiteInfo, RetiredKey]:
    """Make ``public_key_pem`` the site's current key; the previous one becomes retired."""
    row = _active_row(session, name)
    fp = _new_key_fingerprint(session, name, public_key_pem)
    retired = RetiredKeyRow(
        fingerprint=row.fingerprint,
        site=name,
        public_key_pem=row.public_key_pem,
        status=RETIRED,
        retired_at=datetime.now(UTC),
    )
    session.add(retired)
    row.fingerprint = fp
    row.public_key_pem = public_key_pem.decode("ascii")
    return _site(row), _retired(retired)


def _retired(row: RetiredKeyRow) -> RetiredKey:
    return RetiredKey(row.site, row.fingerprint, row.status, row.public_key_pem)


def revoke_retired_key(session: Session, name: str, fp: str) -> RetiredKey:
    """Revoke one retired key of ``name``: the bundles it signed are no longer trusted."""
    row = session.get(RetiredKeyRow, fp)
    if row is None or row.site != name:
        current = session.get(SiteRow, name)
        hint = "see `gsco-registry sites keys`"
        if current is not None and current.fingerprint == fp:
            hint = "that is the site's current key: revoke the site with `gsco-registry sites revoke`"
        raise RegistryError(f"site {name!r} has no retired key {fp}", hint=hint)
    if row.status == REVOKED:
        raise RegistryError(f"the retired key {fp} of site {name!r} is already revoked")
    row.status = REVOKED
    row.revoked_at = datetime.now(UTC)
    return _retired(row)


def retired_keys(session: Session) -> list[RetiredKey]:
    rows = session.scalars(select(RetiredKeyRow).order_by(RetiredKeyRow.site, RetiredKeyRow.retired_at))
    return [_retired(row) for row in rows]


def trusted_keys(session: Session) -> dict[str, bytes]:
    """Fingerprint -> PEM of every key whose bundles a hub may trust.

    The current key of each active site and its retired, unrevoked keys.
    """
    active = {s.name: s for s in list_sites(session) if s.active}
    keys = {s.fingerprint: s.public_key_pem.encode("ascii") for s in active.values()}
    for key in retired_keys(session):
        if key.site in active and key.status == RETIRED:
            keys[key.fingerprint] = key.public_key_pem.encode("ascii")
    return keys


def site_by_fingerprint(session: Session, fp: str) -> SiteInfo | None:
    """The site holding key ``fp``: its current key, or a retired one (status retired or revoked)."""
    row = session.scalars(select(SiteRow).where(SiteRow.fingerprint == fp)).first()
    if row is not None:
        return _site(row)
    retired = session.get(RetiredKeyRow, fp)
    if retired is None:
        return None
    site = session.get(SiteRow, retired.site)
    status = REVOKED if site is None or site.status == REVOKED else retired.status
    return SiteInfo(retired.site, fp, status, retired.public_key_pem)


def active_site_for(session: Session, fp: str) -> SiteInfo:
    """The enrolled, active site holding key ``fp``; :class:`AuthError` otherwise."""
    site = site_by_fingerprint(session, fp)
    if site is None:
        raise AuthError(
            f"the signing key {fp[:19]}... is not enrolled in this registry",
            hint="send keys/site.pub to the central team (gsco-registry sites enroll NAME --public-key FILE)",
        )
    if site.status == RETIRED:
        raise AuthError(
            f"the signing key {fp[:19]}... of site {site.name!r} was replaced by a new key",
            hint="export the bundle again: it is signed with the site's current keys/site.key",
        )
    if not site.active:
        raise AuthError(f"the signing key of site {site.name!r} is revoked", hint="contact the central team")
    return site
