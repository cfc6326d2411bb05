"""The registry as one object: what ``gsco-registry``, ``site-agent publish`` and the hub call.

:class:`Registry` combines the MLflow store (models, versions, bundle artifacts, tags, alias)
with the registry's own tables (tasks, sites, approvals, audit). Library API for the hub runtime:

* :meth:`Registry.list_approved` -> candidate :class:`VersionRef` s (alias + status; unverified),
* :meth:`Registry.download_bundle` -> a local bundle folder,
* :meth:`Registry.trust_store` -> :class:`~registry.trust.TrustStore` (central key, active site
  keys, revoked digests), and :func:`registry.trust.verify_approved` to decide.

Review (approve, reject, revoke, verify) lives in :mod:`registry.review`, the stores and their
lookups (``version``, ``trust_store``, ``serving_statement``) in :mod:`registry.stores`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from mlflow import MlflowClient
from sqlalchemy.orm import Session

from gsco_common.errors import AuditError, ConfigError, KeyMaterialError, RegistryError
from gsco_common.ids import version_key
from gsco_common.keys import (
    fingerprint,
    generate_key_pair,
    load_private_key,
    load_public_key,
    passphrase_from_env_or_prompt,
)
from registry.bundle.card import Card
from registry.bundle.layout import bundle_digest, require_bundle_files
from registry.config import HOME_ENV, RegistryConfig
from registry.review import Review
from registry.store import audit, catalog
from registry.store.audit import AuditEntry, ChainReport
from registry.store.catalog import RetiredKey, SiteInfo, TaskInfo
from registry.store.database import has_history
from registry.store.models import (
    APPROVED,
    PENDING,
    STATUSES,
    VersionRef,
    model_name,
)
from registry.store.retry import mlflow_errors, with_retries
from registry.trust import verify_site_signature
from registry.trust_audit import sign_checkpoint

CENTRAL = "central"
_T = TypeVar("_T")


@dataclass(frozen=True)
class PublishResult:
    name: str
    version: str
    created: bool
    bundle_digest: str
    status: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InitResult:
    created_key: bool
    approval_fingerprint: str


def _tags_for(card: Card, source: str, digest: str) -> dict[str, str]:
    tags = {
        "task": card.task_id,
        "backbone": card.backbone,
        "source": source,
        "site_fingerprint": card.key_fingerprint,
        "bundle_digest": digest,
        "model_uid": card.model_uid,
        "federated": str(card.federated).lower(),
        "status": PENDING,
    }
    for metric, value in card.headline_metrics().items():
        tags[f"metric.{metric}"] = "" if value is None else f"{value:.4f}"
    return {**tags, **_privacy_tags(card)}


def _exact(value: float | None) -> str:
    """A float as the shortest text that reads back to the same number ("" for none)."""
    return "" if value is None else repr(float(value))


def _privacy_tags(card: Card) -> dict[str, str]:
    """ε, δ, the DP notion and the MIA AUC, so the MLflow UI shows them without opening the card.

    With the notion ``both`` (a federated run), ``privacy.epsilon`` / ``privacy.delta`` are the
    sample-level figures and ``privacy.update_epsilon`` / ``privacy.update_delta`` the hub's.
    """
    privacy = card.privacy or {}
    update = privacy.get("update_level") or {}
    return {
        "privacy.notion": privacy.get("notion", "none"),
        "privacy.epsilon": _exact(privacy.get("epsilon")),
        "privacy.delta": _exact(privacy.get("delta")),
        "privacy.update_epsilon": _exact(update.get("epsilon")),
        "privacy.update_delta": _exact(update.get("delta")),
        "privacy.mia_auc": _exact(card.membership_inference_auc),
    }


def _refuse_a_new_key_for_old_history(config: RegistryConfig) -> None:
    """A lost approval key must be restored, never replaced: a new one unapproves every version."""
    if has_history(config.tables_uri):
        raise KeyMaterialError(
            "the central approval key (keys/approval.key) is missing, but this registry already has "
            "a history: a new key would leave every approval and signed checkpoint unverifiable",
            hint="restore keys/approval.key and keys/approval.pub from the backup, then re-run init",
        )


class Registry(Review, AbstractContextManager["Registry"]):
    """An open registry; use as a context manager (``with`` closes it) or call :meth:`close`."""

    @classmethod
    def open(cls, config: RegistryConfig) -> Registry:
        """Open an initialised registry, retrying while it is unreachable."""
        return with_retries(
            lambda: cls(config),
            retries=config.retries,
            backoff_s=config.backoff_s,
            action="opening the registry",
        )

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.tables.dispose()

    # -- setup -------------------------------------------------------------------------------

    @classmethod
    def init(cls, config: RegistryConfig) -> tuple[Registry, InitResult]:
        """Create the databases (idempotent) and the central approval key (kept if present).

        The passphrase is checked and the key written before any table exists, so an init that
        fails half way never leaves a database without an approval key; re-running resumes.
        """
        if config.home.exists() and not config.home.is_dir():
            raise ConfigError(
                "the registry home is not a folder", hint=f"pass --home DIR or set {HOME_ENV} to a folder"
            )
        created = not config.approval_key_path.exists()
        if created:
            _refuse_a_new_key_for_old_history(config)
            passphrase = passphrase_from_env_or_prompt(confirm=True)
            fp = generate_key_pair(config.approval_key_path, config.approval_pub_path, passphrase)
        else:
            fp = fingerprint(load_public_key(config.approval_pub_path))
        config.home.mkdir(parents=True, exist_ok=True)
        if config.artifact_root is not None:
            config.artifact_root.mkdir(parents=True, exist_ok=True)
        if not config.server:
            with mlflow_errors("creating the MLflow tables"):
                MlflowClient(tracking_uri=config.mlflow_uri).search_experiments(max_results=1)
        registry = cls(config, create=True)
        if not config.server:
            with mlflow_errors("creating the tasks' experiments"):
                for task in registry.tasks():  # registries whose tasks predate their experiments
                    registry.models.ensure_experiment(task.task_id)
        with registry.tables.session() as session:
            if created or not audit.entries(session, limit=1):
                audit.append(
                    session,
                    actor=CENTRAL,
                    action="registry.init",
                    subject=fp,
                    details={"key_created": created},
                )
        return registry, InitResult(created, fp)

    # -- tasks and sites ---------------------------------------------------------------------

    def _central_change(
        self,
        action: str,
        subject: str,
        change: Callable[[Session], _T],
        details: Callable[[_T], dict[str, Any]],
    ) -> _T:
        """Apply one catalog change and its central audit entry in the same transaction."""
        with self.tables.session() as session:
            result = change(session)
            audit.append(session, actor=CENTRAL, action=action, subject=subject, details=details(result))
        return result

    def create_task(self, task_id: str, labels: Sequence[str], modality: str) -> TaskInfo:
        """The task's row and, before it commits, its MLflow experiment at the central location.

        A failed experiment leaves no task; a failed commit leaves an empty experiment that the
        next attempt reuses.
        """

        def change(session: Session) -> TaskInfo:
            task = catalog.create_task(session, task_id, labels, modality)
            with mlflow_errors(f"creating the experiment of task {task_id}"):
                self.models.ensure_experiment(task.task_id)
            return task

        return self._central_change("task.create", task_id, change, TaskInfo.to_dict)

    def tasks(self) -> list[TaskInfo]:
        with self.tables.session() as session:
            return catalog.list_tasks(session)

    def has_task(self, task_id: str) -> bool:
        with self.tables.session() as session:
            return catalog.has_task(session, task_id)

    def enroll_site(self, name: str, public_key_pem: bytes) -> SiteInfo:
        return self._central_change(
            "site.enroll",
            name,
            lambda session: catalog.enroll_site(session, name, public_key_pem),
            lambda site: {"fingerprint": site.fingerprint},
        )

    def sites(self) -> list[SiteInfo]:
        with self.tables.session() as session:
            return catalog.list_sites(session)

    def revoke_site(self, name: str, reason: str = "") -> SiteInfo:
        return self._central_change(
            "site.revoke",
            name,
            lambda session: catalog.revoke_site(session, name),
            lambda site: {"fingerprint": site.fingerprint, "reason": reason},
        )

    def rotate_site_key(self, name: str, public_key_pem: bytes) -> tuple[SiteInfo, RetiredKey]:
        """A new current key for ``name``; the old one only keeps its bundles trusted (until revoked)."""
        return self._central_change(
            "site.rotate",
            name,
            lambda session: catalog.rotate_site_key(session, name, public_key_pem),
            lambda pair: {"fingerprint": pair[0].fingerprint, "retired_fingerprint": pair[1].fingerprint},
        )

    def revoke_retired_key(self, name: str, fp: str, reason: str = "") -> RetiredKey:
        return self._central_change(
            "site.key_revoke",
            name,
            lambda session: catalog.revoke_retired_key(session, name, fp),
            lambda _key: {"fingerprint": fp, "reason": reason},
        )

    def retired_keys(self) -> list[RetiredKey]:
        with self.tables.session() as session:
            return catalog.retired_keys(session)

    # -- publishing (site side) ----------------------------------------------------------------

    def publish(self, bundle_dir: Path, *, source: str | None = None) -> PublishResult:
        """Upload a signed bundle as a new pending version; the same bundle twice -> same version.

        Refuses unknown tasks, labels that differ from the task's, keys that are not enrolled or
        revoked, and bundles whose ``site.sig`` does not verify. ``source`` names the producer in
        the registered model's name (default: the enrolled site name; federated runs pass theirs).
        """
        require_bundle_files(bundle_dir)
        card = Card.read(bundle_dir)
        digest = bundle_digest(bundle_dir)

        def attempt() -> PublishResult:
            with self.tables.session() as session:
                task = catalog.get_task(session, card.task_id)
                site = catalog.active_site_for(session, card.key_fingerprint)
            if card.labels != task.labels:
                raise RegistryError(
                    f"the bundle's labels {list(card.labels)} differ from task {task.task_id!r}: "
                    f"{list(task.labels)}",
                    hint="labels must match exactly and in order; fix task.labels in site.yaml and retrain",
                )
            verify_site_signature(bundle_dir, {site.fingerprint: site.public_key_pem.encode("ascii")})
            name = model_name(task.task_id, card.backbone, source or site.name)
            existing = self.models.find_by_digest(name, digest)
            if existing is not None:
                return PublishResult(name, existing.version, False, digest, existing.status)
            ref = self.models.create_version(
                name,
                bundle_dir,
                task_id=task.task_id,
                model_tags={"task": task.task_id, "backbone": card.backbone, "source": source or site.name},
                version_tags=_tags_for(card, source or site.name, digest),
            )
            with self.tables.session() as session:
                audit.append(
                    session,
                    actor=f"site:{site.name}",
                    action="model.publish",
                    subject=version_key(name, ref.version),
                    details={"bundle_digest": digest, "model_uid": card.model_uid},
                )
            return PublishResult(name, ref.version, True, digest, PENDING)

        return with_retries(
            attempt, retries=self.config.retries, backoff_s=self.config.backoff_s, action="publishing"
        )

    # -- review (central team) -----------------------------------------------------------------

    def versions(self, *, status: str | None = None, task: str | None = None) -> list[VersionRef]:
        if status is not None and status not in STATUSES:
            raise RegistryError(f"unknown status {status!r}", hint=f"one of {', '.join(STATUSES)}")
        return self.models.search(task=task, status=status)

    def show(self, name: str, version: str) -> tuple[VersionRef, dict[str, Any]]:
        """The version's tags and its card (read from the stored bundle)."""
        ref = self.version(name, version)
        with tempfile.TemporaryDirectory(prefix="gsco-show-") as tmp:
            bundle = self.models.download(ref, Path(tmp) / "bundle")
            card = Card.read(bundle).data
        return ref, card

    def download_bundle(self, name: str, version: str, dest: Path) -> Path:
        """Download a version's bundle folder (``model.onnx``, ``card.json``, signatures) to ``dest``."""
        return self.models.download(self.version(name, version), dest)

    # -- hub runtime API -------------------------------------------------------------------------

    def list_approved(self, task: str) -> list[VersionRef]:
        """Versions a hub should try to serve for ``task``: alias ``approved`` and status approved.

        Candidates only: the hub must download each and pass it through
        :func:`registry.trust.verify_approved` with :meth:`trust_store`.
        """
        holders = self.models.alias_holders()
        return sorted(
            (ref for ref in holders if ref.task == task and ref.status == APPROVED), key=lambda r: r.name
        )

    def ping(self) -> None:
        """Check that the model store answers: in server mode the own tables answering is not enough.

        The hub reads the approved set from the tables but downloads bundles through the MLflow
        server; without this, a stopped server would go unnoticed until the next new approval.
        """
        if self.config.server:
            self.models.ping()

    def alias_disagreements(self, task: str) -> list[str]:
        """Where the ``approved`` aliases of ``task`` differ from its signed approved set (the truth)."""
        signed = self.serving_statement(task)
        listed = set() if signed is None else {v.key for v in signed.statement.versions}
        aliased = {version_key(ref.name, ref.version) for ref in self.list_approved(task)}
        return [
            f"{key}: alias `approved` set, not in the signed approved set" for key in sorted(aliased - listed)
        ] + [
            f"{key}: in the signed approved set, alias `approved` not set" for key in sorted(listed - aliased)
        ]

    def checkpoint_audit(self, *, actor: str) -> None:
        """Sign the audit log's current head with the central key (passphrase: GSCO_KEY_PASSPHRASE)."""
        key = load_private_key(self.config.approval_key_path, passphrase_from_env_or_prompt(confirm=False))
        with self.tables.session() as session:
            sign_checkpoint(session, key, actor=actor)

    # -- audit ---------------------------------------------------------------------------------

    def audit_entries(self, limit: int | None = None) -> list[AuditEntry]:
        with self.tables.session() as session:
            return audit.entries(session, limit=limit)

    def audit_verify(self) -> ChainReport:
        """The chain report; :class:`AuditError` naming the first broken entry if it is broken."""
        with self.tables.session() as session:
            report = audit.verify_chain(session)
        if not report.ok:
            raise AuditError(
                f"the audit log is broken at entry {report.broken_seq}: {report.reason}",
                hint="the database was changed outside gsco-registry; investigate before trusting it",
            )
        return report
