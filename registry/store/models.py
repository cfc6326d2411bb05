"""Models, versions, tags and the ``approved`` alias in the MLflow model registry.

One registered model per (task, backbone, source), named ``TASK.BACKBONE.SOURCE``; one version
per published bundle. Each version is backed by an MLflow run in the experiment ``gsco-TASK``
whose artifact folder ``bundle/`` holds the bundle files. The run carries no parameters and only
the tags set here (the client API adds no user, host or source-path tags).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from gsco_common.errors import RegistryError
from registry.bundle.layout import SIGNED_FILES, SITE_SIG
from registry.config import RegistryConfig
from registry.store.retry import mlflow_client_defaults, mlflow_errors

APPROVED_ALIAS = "approved"
BUNDLE_ARTIFACT_DIR = "bundle"
PENDING, APPROVED, REJECTED, REVOKED = "pending", "approved", "rejected", "revoked"
STATUSES = (PENDING, APPROVED, REJECTED, REVOKED)
METRIC_TAG_PREFIX = "metric."


def model_name(task_id: str, backbone: str, source: str) -> str:
    return f"{task_id}.{backbone}.{source}"


@dataclass(frozen=True)
class VersionRef:
    """A published bundle version as the registry lists it (tags, not yet verified)."""

    name: str
    version: str
    task: str
    backbone: str
    source: str
    site_fingerprint: str
    bundle_digest: str
    model_uid: str
    status: str
    aliases: tuple[str, ...] = ()
    """Only ``approved`` is tracked; read from the registered model, never trusted for serving."""
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str = ""

    @property
    def has_approved_alias(self) -> bool:
        return APPROVED_ALIAS in self.aliases

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "task": self.task,
            "backbone": self.backbone,
            "source": self.source,
            "site_fingerprint": self.site_fingerprint,
            "bundle_digest": self.bundle_digest,
            "model_uid": self.model_uid,
            "status": self.status,
            "aliases": list(self.aliases),
            "metrics": self.metrics,
        }


def _ref(mv: ModelVersion) -> VersionRef:
    tags = dict(mv.tags or {})
    metrics = {
        key[len(METRIC_TAG_PREFIX) :]: float(value)
        for key, value in tags.items()
        if key.startswith(METRIC_TAG_PREFIX) and value not in ("", "None")
    }
    return VersionRef(
        name=mv.name,
        version=str(mv.version),
        task=tags.get("task", ""),
        backbone=tags.get("backbone", ""),
        source=tags.get("source", ""),
        site_fingerprint=tags.get("site_fingerprint", ""),
        bundle_digest=tags.get("bundle_digest", ""),
        model_uid=tags.get("model_uid", ""),
        status=tags.get("status", ""),
        aliases=tuple(mv.aliases or ()),
        metrics=metrics,
        run_id=mv.run_id or "",
    )


def _quote(value: str) -> str:
    if "'" in value:
        raise RegistryError("names and tags must not contain quotes")
    return f"'{value}'"


class ModelStore:
    """Thin, typed layer over :class:`MlflowClient` for bundle versions."""

    def __init__(self, config: RegistryConfig) -> None:
        mlflow_client_defaults()
        self.config = config
        self.client = MlflowClient(tracking_uri=config.mlflow_uri, registry_uri=config.mlflow_uri)

    def ensure_experiment(self, task_id: str) -> str:
        """The task's experiment, created at the registry's own artifact root if missing.

        Only the central side calls this (``tasks create``, ``init``, the topology's grant): on a
        server, sites need EDIT on it to publish.
        """
        name = f"gsco-{task_id}"
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        root = self.config.artifact_root
        location = (root / task_id).as_uri() if root is not None else None
        return self.client.create_experiment(name, artifact_location=location, tags={"task": task_id})

    def _publishing_experiment(self, task_id: str) -> str:
        """The experiment a publication goes to; never one created at a publisher's own folder.

        Over a database URI (no server, no registry home of its own) a publisher that created the
        experiment would record its own home folder, and with it its user name, as the central
        artifact location; there the central team must have created it.
        """
        if self.config.embedded or self.config.server:
            return self.ensure_experiment(task_id)
        experiment = self.client.get_experiment_by_name(f"gsco-{task_id}")
        if experiment is None:
            raise RegistryError(
                f"task {task_id!r} has no experiment in this registry database yet, and a publisher "
                "connected straight to the database does not create one (it would record its own "
                "folder there)",
                hint="the central team runs `gsco-registry init` once (it creates the experiment of "
                "every task), or publish through the registry server",
            )
        return experiment.experiment_id

    def find_by_digest(self, name: str, digest: str) -> VersionRef | None:
        with mlflow_errors("looking up the bundle"):
            found = self.client.search_model_versions(
                f"name={_quote(name)} and tags.bundle_digest={_quote(digest)}"
            )
        return _ref(found[0]) if found else None

    def create_version(
        self,
        name: str,
        bundle_dir: Path,
        *,
        task_id: str,
        model_tags: dict[str, str],
        version_tags: dict[str, str],
    ) -> VersionRef:
        """Upload the bundle files as a run's artifacts and register them as a new version."""
        with mlflow_errors("publishing the bundle"), tempfile.TemporaryDirectory(prefix="gsco-pub-") as tmp:
            staging = Path(tmp)
            for file_name in (*SIGNED_FILES, SITE_SIG):
                shutil.copyfile(bundle_dir / file_name, staging / file_name)
            experiment_id = self._publishing_experiment(task_id)
            digest = version_tags["bundle_digest"]
            run = self.client.create_run(
                experiment_id,
                run_name=f"bundle-{digest.removeprefix('sha256:')[:12]}",
                tags={"task": task_id, "bundle_digest": digest},
            )
            self.client.log_artifacts(run.info.run_id, str(staging), BUNDLE_ARTIFACT_DIR)
            self.client.set_terminated(run.info.run_id)
            if not self.client.search_registered_models(f"name={_quote(name)}"):
                self.client.create_registered_model(name, tags=model_tags)
            mv = self.client.create_model_version(
                name,
                source=f"runs:/{run.info.run_id}/{BUNDLE_ARTIFACT_DIR}",
                run_id=run.info.run_id,
                tags=version_tags,
            )
        return _ref(mv)

    def ping(self) -> None:
        """One cheap request; :class:`RegistryUnavailableError` when the tracking server is away."""
        with mlflow_errors("reaching the model registry"):
            self.client.search_registered_models(max_results=1)

    def get(self, name: str, version: str) -> VersionRef:
        with mlflow_errors(f"reading {name} version {version}"):
            ref = _ref(self.client.get_model_version(name, version))
            aliases = self.client.get_registered_model(name).aliases or {}
        holds = str(aliases.get(APPROVED_ALIAS)) == ref.version
        return replace(ref, aliases=(APPROVED_ALIAS,) if holds else ())

    def search(self, *, task: str | None = None, status: str | None = None) -> list[VersionRef]:
        clauses = []
        if task:
            clauses.append(f"tags.task={_quote(task)}")
        if status:
            clauses.append(f"tags.status={_quote(status)}")
        refs: list[VersionRef] = []
        token: str | None = None
        with mlflow_errors("listing model versions"):
            while True:
                page = self.client.search_model_versions(
                    " and ".join(clauses) or None, max_results=1000, page_token=token
                )
                refs.extend(_ref(mv) for mv in page)
                token = page.token
                if not token:
                    break
        holders = set(self._alias_pairs())
        refs = [
            replace(ref, aliases=(APPROVED_ALIAS,) if (ref.name, ref.version) in holders else ())
            for ref in refs
        ]
        return sorted(refs, key=lambda r: (r.name, int(r.version)))

    def set_tags(self, ref: VersionRef, tags: dict[str, str]) -> None:
        with mlflow_errors(f"tagging {ref.name} version {ref.version}"):
            for key, value in tags.items():
                self.client.set_model_version_tag(ref.name, ref.version, key, value)

    def set_approved_alias(self, ref: VersionRef) -> None:
        with mlflow_errors(f"setting the alias on {ref.name}"):
            self.client.set_registered_model_alias(ref.name, APPROVED_ALIAS, ref.version)

    def clear_approved_alias(self, ref: VersionRef) -> bool:
        """Remove the alias if it points at this version; say whether it did."""
        current = self.get(ref.name, ref.version)
        if not current.has_approved_alias:
            return False
        with mlflow_errors(f"removing the alias from {ref.name}"):
            self.client.delete_registered_model_alias(ref.name, APPROVED_ALIAS)
        return True

    def _alias_pairs(self) -> list[tuple[str, str]]:
        """``(name, version)`` holding ``approved`` in every registered model.

        Aliases are read from registered models: every backend returns them there, while a
        version search over REST leaves them out.
        """
        holders = []
        token: str | None = None
        with mlflow_errors("listing registered models"):
            while True:
                page = self.client.search_registered_models(max_results=1000, page_token=token)
                for model in page:
                    version = (model.aliases or {}).get(APPROVED_ALIAS)
                    if version is not None:
                        holders.append((model.name, str(version)))
                token = page.token
                if not token:
                    break
        return holders

    def alias_holders(self) -> list[VersionRef]:
        """The version holding ``approved`` in every registered model (whatever its tags say)."""
        return [self.get(name, version) for name, version in self._alias_pairs()]

    def add_bundle_file(self, ref: VersionRef, path: Path) -> None:
        with mlflow_errors(f"uploading {path.name}"):
            self.client.log_artifact(ref.run_id, str(path), BUNDLE_ARTIFACT_DIR)

    def download(self, ref: VersionRef, dest: Path) -> Path:
        """Download the version's bundle folder to ``dest`` (replaced if present)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        with (
            mlflow_errors(f"downloading {ref.name} version {ref.version}"),
            tempfile.TemporaryDirectory(prefix=".gsco-dl-", dir=dest.parent) as tmp,
        ):
            local = Path(self.client.download_artifacts(ref.run_id, BUNDLE_ARTIFACT_DIR, tmp))
            if dest.exists():
                shutil.rmtree(dest)
            local.rename(dest)
        return dest
