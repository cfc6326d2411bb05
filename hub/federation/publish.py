"""Turn a finished federated run into a signed bundle and publish it as ``federation-<run>``.

The global model of the last round goes through the platform's one bundle builder
(:func:`specialist.export.bundle.build_bundle`: ONNX export, anonymization, PHI and deny-list
scan of model and card, PyTorch parity, signature) and the card builder; only the signer
differs: the hub's federation key (``GSCO_HOME/keys/federation.key``, which the central team
enrols in the registry like a site key). The card lists each
participating site by key fingerprint with its aggregate held-out metrics; the evaluation
section pools the sites' held-out sets (no per-image values ever reached the hub, so there are
no bootstrap intervals); (epsilon, delta) are recorded when the run used DP. Each site that
trained is listed with the digest of its training set, computed at the site (a digest only,
``registry.bundle.provenance``), and the card's ``data.training_set_digest`` combines them, so
the hub's consensus fit refuses a case library imported from any of those sites' training data.
Parity is checked on synthetic inputs: the hub holds no patient images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gsco_common.errors import FederationError, KeyMaterialError
from gsco_common.keys import (
    fingerprint,
    generate_key_pair,
    load_signing_key,
    passphrase_from_env_or_prompt,
)
from hub.federation.orchestrate import RunOutcome
from hub.federation.rounds import CHECKPOINTS, GLOBAL_CHECKPOINT
from registry.bundle.card import HEADLINE_METRICS, NOTION_BOTH, NOTION_HUB, NOTION_SITE, suppress_count
from registry.bundle.phi import system_identifiers
from registry.bundle.provenance import combined_digest
from registry.config import RegistryConfig
from registry.service import PublishResult, Registry
from registry.store.catalog import TaskInfo
from specialist.export.bundle import PrivacyScan, build_bundle
from specialist.export.card_builder import PRIVACY_CARD_KEYS, build_card, model_uid
from specialist.export.onnx_export import ExportResult
from specialist.models.factory import create_specialist
from specialist.models.specialist import Specialist
from specialist.task import TaskConfig
from specialist.training.dp import make_dp_compatible

BUNDLE_DIR = "bundle"
PARITY_IMAGES = 16
FEDERATED_PRIVACY_HINT = (
    "nothing was written; remove the identifying text from the registry's task or the deny list"
)
FEDERATION_LIMITATIONS = (
    "Trained by federated learning on the participating sites' data only; performance on other "
    "populations, devices and protocols is unknown until validated there.",
    "Held-out metrics are pooled from the sites' own held-out splits, without confidence intervals.",
)


def federation_key_paths(registry_home: Path) -> tuple[Path, Path]:
    """``(private, public)``: ``GSCO_HOME/keys/federation.key`` and ``federation.pub``."""
    keys = registry_home / "keys"
    return keys / "federation.key", keys / "federation.pub"


def create_federation_key(registry_home: Path) -> str:
    """Create the hub's federation signing key (passphrase from GSCO_KEY_PASSPHRASE); never overwrites."""
    private, public = federation_key_paths(registry_home)
    return generate_key_pair(private, public, passphrase_from_env_or_prompt(confirm=True))


@dataclass(frozen=True)
class FederatedBundle:
    """What was published."""

    path: Path
    source: str
    publish: PublishResult

    def to_dict(self) -> dict[str, Any]:
        return {"bundle": str(self.path), "source": self.source, **self.publish.to_dict()}


def _metric_name(key: str) -> str:
    return key.replace("-", "_")


def _estimate(value: Any) -> dict[str, Any]:
    return {"value": None if value is None else float(value), "ci95": None}


def evaluation_from_sites(result: dict[str, Any]) -> dict[str, Any]:
    """The card's evaluation section from the pooled site metrics of the final model."""
    final = {_metric_name(key): value for key, value in result["final_metrics"].items()}
    per_class = final.get("per_class", {})
    labels = result["label_names"]
    splits = {site["held_out_split"] for site in result["sites"] if site["status"] == "active"}
    return {
        "split": "test" if splits == {"test"} else "val",
        "n": suppress_count(int(final.get("examples") or 0)),
        "metrics": {name: _estimate(final.get(name)) for name in HEADLINE_METRICS},
        "per_class": [
            {
                "label": label,
                "sensitivity": _estimate(per_class.get("sensitivity", [None] * len(labels))[index]),
                "specificity": _estimate(per_class.get("specificity", [None] * len(labels))[index]),
            }
            for index, label in enumerate(labels)
        ],
        "operating_point": {"rule": "argmax", "threshold": 0.5 if len(labels) == 2 else None},
        "ece": _estimate(final.get("ece")),
        "bootstrap": {"resamples": 0, "seed": int(result["seed"])},
    }


def _site_key(site: dict[str, Any]) -> str:
    """How the card names a site: its site key fingerprint, else its SuperNode key's."""
    return site["site_fingerprint"] or site["node_fingerprint"]


def training_sets(result: dict[str, Any]) -> tuple[list[dict[str, str]], str | None]:
    """Every site that trained in at least one round with its training-set digest, and their combination.

    The combined digest is None when a site that trained sent no digest (an older site agent):
    the card cannot then name the training set as a whole.
    """
    trained = [site for site in result["sites"] if site["rounds_participated"] > 0]
    listed = [
        {"key_fingerprint": _site_key(site), "training_set_digest": site["training_set_digest"]}
        for site in trained
        if site.get("training_set_digest")
    ]
    complete = bool(trained) and len(listed) == len(trained)
    return listed, combined_digest(e["training_set_digest"] for e in listed) if complete else None


def federation_section(result: dict[str, Any]) -> dict[str, Any]:
    """Strategy, rounds, the sites that finished (metrics) and the sites that trained (data digests).

    Sites are named by key fingerprint: the hub learns no site names or paths.
    """
    sites = []
    for site in result["sites"]:
        if not site["final_metrics"]:
            continue
        metrics = {
            _metric_name(key): value
            for key, value in site["final_metrics"].items()
            if not isinstance(value, list)
        }
        sites.append(
            {
                "key_fingerprint": _site_key(site),
                "node_key_fingerprint": site["node_fingerprint"],
                "metrics": metrics,
            }
        )
    section: dict[str, Any] = {
        "strategy": result["strategy"],
        "rounds": int(result["rounds"]),
        "sites": sites,
        "training_sets": training_sets(result)[0],
    }
    if result.get("dp"):
        dp = result["dp"]
        section["dp"] = {
            "epsilon": dp["epsilon"],
            "delta": dp["delta"],
            "noise_multiplier": dp["noise_multiplier"],
            "clipping_norm": dp["clipping_norm"],
        }
    return section


def hub_privacy(dp: dict[str, Any] | None) -> dict[str, Any] | None:
    """The card's ``training.privacy`` for a run with DP at the hub (None without, or before any release)."""
    if not dp or dp.get("epsilon") is None:
        return None
    return {
        "notion": NOTION_HUB,
        "epsilon": dp["epsilon"],
        "delta": dp["delta"],
        "accountant": dp["accounting"],
        "noise_multiplier": dp["noise_multiplier"],
    }


# Each DP-SGD site's figures in the card: a local card's privacy keys, the notion being the card's.
SITE_PRIVACY_KEYS = tuple(key for key in PRIVACY_CARD_KEYS if key != "notion")


def _site_key(site: dict[str, Any]) -> str:
    return site["site_fingerprint"] or site["node_fingerprint"]


def federated_privacy(result: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """The card's ``training.privacy`` of a federated run and the limitations it adds.

    Sample-level DP holds for the model only when every site whose update went into it (one
    round or more) trained with DP-SGD: each image lives at one site, so the model protects every
    training image with the largest ε and δ over the sites (each site listed with its own). With
    DP at the hub as well the notion is ``both`` and ``update_level`` carries the hub's figures.
    When only some sites ran DP-SGD, no sample-level guarantee holds: the notion is the hub's
    (or there is none) and a limitation says so.
    """
    hub = hub_privacy(result.get("dp"))
    trained = [site for site in result["sites"] if site["rounds_participated"] > 0]
    private = [site for site in trained if site.get("dp_sgd")]
    if trained and len(private) == len(trained):
        worst = max(private, key=lambda site: site["dp_sgd"]["epsilon"])
        block: dict[str, Any] = {
            "notion": NOTION_SITE,
            "epsilon": float(worst["dp_sgd"]["epsilon"]),
            "delta": max(float(site["dp_sgd"]["delta"]) for site in private),
            "accountant": worst["dp_sgd"]["accountant"],
            "sites": [
                {
                    "key_fingerprint": _site_key(site),
                    **{key: site["dp_sgd"][key] for key in SITE_PRIVACY_KEYS},
                }
                for site in private
            ],
        }
        if hub is not None:
            block["notion"] = NOTION_BOTH
            block["update_level"] = {key: value for key, value in hub.items() if key != "notion"}
        return block, []
    if not private:
        return hub, []
    note = (
        f"Only {len(private)} of {len(trained)} participating sites trained with DP-SGD: no "
        "sample-level differential privacy guarantee holds for the model"
        + ("; the hub's update-level guarantee does." if hub else ".")
    )
    return hub, [note]


def _train_counts(result: dict[str, Any]) -> list[int]:
    """Class counts of all sites' training splits (suppressed site counts are left out)."""
    totals = [0] * len(result["label_names"])
    for site in result["sites"]:
        for index, count in enumerate(site["class_counts"]):
            totals[index] += count or 0
    return totals


def load_global_model(outcome: RunOutcome) -> tuple[Specialist, Path]:
    """The final global model of a run, rebuilt from its last checkpoint (eval mode)."""
    path = outcome.out_dir / CHECKPOINTS / GLOBAL_CHECKPOINT
    payload = torch.load(path, map_location="cpu", weights_only=True)
    build = payload["build"]
    model = create_specialist(build["backbone"], build["num_classes"], build["image_size"], pretrained=False)
    if build.get("dp_model"):
        model = make_dp_compatible(model)
    result = model.load_state_dict(payload["state_dict"], strict=False)
    own = model.state_dict()
    if result.unexpected_keys or any(own[key].is_floating_point() for key in result.missing_keys):
        raise FederationError("the run's global checkpoint does not match its architecture")
    return model.eval(), path


def bundle_run(
    outcome: RunOutcome, task: TaskInfo, registry_home: Path, deny_list: Sequence[str] = ()
) -> Path:
    """Export, card, PHI / deny-list scan and sign the run's global model into ``OUT_DIR/bundle``."""
    result = outcome.result
    if tuple(result["label_names"]) != tuple(task.labels):
        raise FederationError(
            f"the sites' labels {result['label_names']} differ from the registry's task {task.task_id!r}",
            hint="fix task.labels in the sites' site.yaml to match the registry",
        )
    private_path, public_path = federation_key_paths(registry_home)
    if not private_path.is_file():
        raise KeyMaterialError(
            "the hub has no federation signing key", hint="create it with `gsco-hub federation key`"
        )
    key = load_signing_key(private_path, public_path)
    model, checkpoint = load_global_model(outcome)
    size = model.image_size
    parity = np.random.default_rng(0).standard_normal((PARITY_IMAGES, 3, size, size)).astype(np.float32)
    epochs = int(result["rounds"]) * int(result["local_epochs"])
    privacy, privacy_notes = federated_privacy(result)

    def make_card(exported: ExportResult, _onnx_path: Path) -> dict[str, Any]:
        return build_card(
            task=TaskConfig(
                id=task.task_id,
                labels=list(task.labels),
                modality=task.modality,
                limitations=[*FEDERATION_LIMITATIONS, *privacy_notes],
            ),
            backbone=model.backbone,
            embedding_dim=model.embedding_dim,
            preprocessing=model.preprocessing,
            opset=exported.opset,
            evaluation=evaluation_from_sites(result),
            epochs=epochs,
            best_epoch=epochs,
            seed=int(result["seed"]),
            membership_auc=result["final_metrics"].get("mia-auc"),
            class_counts={"train": _train_counts(result)},
            key_fingerprint=fingerprint(key.public_key()),
            uid=model_uid(f"federation-{outcome.name}", checkpoint),
            dp_epsilon=None if privacy is None else privacy["epsilon"],
            federation=federation_section(result),
            training_set_digest=training_sets(result)[1],
            privacy=privacy,
        )

    target = outcome.out_dir / BUNDLE_DIR
    build_bundle(
        target,
        model=model,
        parity_inputs=parity,
        make_card=make_card,
        key=key,
        scan=PrivacyScan(tuple(system_identifiers()), tuple(deny_list), FEDERATED_PRIVACY_HINT),
    )
    return target


def publish_run(
    outcome: RunOutcome, registry: RegistryConfig, deny_list: Sequence[str] = ()
) -> FederatedBundle:
    """Build the run's bundle and publish it to ``registry`` as source ``federation-<run>``.

    ``deny_list``: strings that must never appear in the bundle (scanned like a site's
    ``export.deny_list``), besides this machine's host and user names.
    """
    source = f"federation-{outcome.name}"
    with Registry.open(registry) as opened:
        tasks = {task.task_id: task for task in opened.tasks()}
        task = tasks.get(str(outcome.result["task"]))
        if task is None:
            raise FederationError(
                f"the registry has no task {outcome.result['task']!r}",
                hint="the central team creates it with `gsco-registry tasks create`",
            )
        bundle = bundle_run(outcome, task, registry.home, deny_list)
        published = opened.publish(bundle, source=source)
    return FederatedBundle(bundle, source, published)
