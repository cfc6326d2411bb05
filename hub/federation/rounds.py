"""The round loop of a federated run, driven by the hub's ServerApp.

Per run: wait for sites, ask each connected SuperNode which task it trains (``query``), then for
every round send the global weights (packed, as float16 differences from the sites' copy after
the first round, :mod:`hub.federation.transport`) to the participating sites (``train``: each site first
evaluates the incoming global model, then trains, so evaluation costs no extra round trip),
aggregate with the strategy, save a global checkpoint and report progress. A final
``evaluate`` gives each site's metrics of the final model for the card.

Sites that fail, refuse (unapproved code, other task) or do not answer within the round timeout
leave the run; the run goes on while at least ``min_sites`` remain and stops with a
:class:`FederationError` that names the reasons otherwise. Replies are polled every
:data:`POLL_S` seconds (Flower's ``send_and_receive`` sleeps 3 s between polls) and downloaded
with short retries (:mod:`hub.federation.transport`). Each round reports its phases (send,
collect, aggregate, checkpoint) and its overhead: wall time minus the slowest site's work.

Why this loop and not Flower's ``Strategy.start`` (flwr 1.42): the loop uses the strategy's
public per-round API (``configure_train``, ``aggregate_train``), but ``start`` does not meet
these needs:

- packed float16 deltas: ``start`` hands ``configure_train``'s messages to the grid and the
  replies to ``aggregate_train`` with no step between, where we put in the packed difference
  from the sites' copy and decode each reply back to full weights (an undecodable reply is that
  site failing);
- round timeouts, sites leaving with reasons: ``send_and_receive`` returns what arrived and
  FedAvg only logs error replies; ``start`` cannot say which site left or why, and samples
  from every connected node again next round;
- ``min_sites``: its sampler waits without a deadline for ``min_available_nodes``, and a round
  aggregates however few replies came; ours waits ``wait_sites_timeout`` and stops the run
  (enrolment, every round, final evaluation) when fewer than ``min_sites`` remain;
- evaluation folded into train: ``start`` would allow it (``fraction_evaluate=0`` sends no
  evaluate round), but it sends one ``train_config`` for all rounds, so the round's learning
  rate, ``evaluate-incoming`` and the wire keys could not change per round;
- progress file: ``start`` reports through Flower's log and a ``Result`` at the end; we write
  a ``progress.jsonl`` event and a checkpoint after every round.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping, Strategy

from gsco_common.errors import FederationError
from gsco_common.keys import fingerprint
from hub.federation.progress import RESULT_FILE, ProgressWriter, dump_json
from hub.federation.settings import RunSettings
from hub.federation.strategy import aggregate_site_metrics, build_strategy, pool_per_class
from hub.federation.transport import SiteView, pull_replies
from specialist.federation.wire import (
    DP_MODEL_KEY,
    ENCODING_KEY,
    FP16_DELTA,
    NUM_ROUNDS_KEY,
    PACKED_FLOAT32,
    PRIVACY_RECORD,
)
from specialist.models.factory import create_specialist
from specialist.training.dp import make_dp_compatible

POLL_S = 0.2
CHECKPOINTS = "checkpoints"
GLOBAL_CHECKPOINT = "global.pt"


@dataclass
class SiteRecord:
    """What the hub learns about one participating site (no names, no paths: keys and aggregates)."""

    node_id: int
    node_fingerprint: str
    site_fingerprint: str
    train_examples: int
    class_counts: list[int | None]
    held_out_split: str
    training_set_digest: str = ""
    """The site's training-set digest (``registry.bundle.provenance``); "" from a site that sent none."""
    rounds: int = 0
    status: str = "active"
    final_metrics: dict[str, Any] = field(default_factory=dict)
    dp_sgd: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "node_fingerprint": self.node_fingerprint,
            "site_fingerprint": self.site_fingerprint or None,
            "train_examples": self.train_examples,
            "class_counts": self.class_counts,
            "held_out_split": self.held_out_split,
            "training_set_digest": self.training_set_digest or None,
            "rounds_participated": self.rounds,
            "status": self.status,
            "final_metrics": self.final_metrics,
            "dp_sgd": self.dp_sgd,
        }


class ParticipantGrid(Grid):
    """A view of the grid whose node list is a fixed snapshot of the participating sites.

    Strategies sample from ``get_node_ids()``; giving them the snapshot keeps sites of other
    tasks out of the run and keeps Flower's sampler from waiting forever for a site that died.
    """

    def __init__(self, grid: Grid, node_ids: Iterable[int]) -> None:
        self._grid = grid
        self._node_ids = list(node_ids)

    def set_run(self, run: Any) -> None:
        self._grid.set_run(run)

    @property
    def run(self) -> Any:
        return self._grid.run

    def create_message(self, *args: Any, **kwargs: Any) -> Message:
        return self._grid.create_message(*args, **kwargs)

    def get_node_ids(self) -> Iterable[int]:
        return list(self._node_ids)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self._grid.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self._grid.pull_messages(message_ids)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        return self._grid.send_and_receive(messages, timeout=timeout)


_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def _training_set_digest(site: ConfigRecord) -> str:
    """The training-set digest a site sent in its description ("" when none); a malformed one is refused."""
    value = str(site.get("training-set-digest", ""))
    if value and not _DIGEST.fullmatch(value):
        raise FederationError(
            "a site sent a malformed training-set digest",
            hint="every site must run the same site-agent version as the hub",
        )
    return value


def _metrics(message: Message) -> MetricRecord:
    return next(iter(message.content.metric_records.values()))


def _reason(message: Message) -> str:
    return message.error.reason if message.has_error() else ""


def site_privacy(reply: Message) -> dict[str, Any] | None:
    """A DP-SGD site's spent budget from its train reply (``privacy`` record), None from other sites."""
    record = reply.content.config_records.get(PRIVACY_RECORD)
    if record is None:
        return None
    return {key.replace("-", "_"): value for key, value in record.items()}


def float_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights that travel: floating-point tensors (integer step counters stay local)."""
    return {key: value for key, value in model.state_dict().items() if value.is_floating_point()}


class Federation:
    """One federated run over the grid; :meth:`run` returns the result written to ``result.json``."""

    def __init__(self, grid: Grid, settings: RunSettings, run_id: int = 0) -> None:
        self.grid = grid
        self.settings = settings
        self.run_id = run_id
        self.out_dir = settings.output
        self.progress = ProgressWriter(self.out_dir)
        self.sites: dict[int, SiteRecord] = {}
        self.labels: list[str] = []
        self.history: list[dict[str, Any]] = []
        self.phases: dict[str, float] = {}
        self.view = SiteView(exact=not settings.compress_updates)

    # --- messaging -----------------------------------------------------------------------------

    def exchange(self, messages: list[Message], timeout: float) -> tuple[list[Message], dict[int, str]]:
        """Send ``messages``; return the replies and, per node without a usable reply, why."""
        started = time.monotonic()
        node_of: dict[str, int] = {}
        pushed = list(self.grid.push_messages(messages))
        for message_id, message in zip(pushed, messages, strict=True):
            if message_id:
                node_of[message_id] = message.metadata.dst_node_id
        self.phases = {"send": time.monotonic() - started}
        failed = {m.metadata.dst_node_id: "the message could not be sent" for m in messages}
        for node in node_of.values():
            failed.pop(node, None)
        pending = set(node_of)
        usable: list[Message] = []
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            received, unreadable = pull_replies(self.grid, pending)
            for reply in received:
                message_id = reply.metadata.reply_to_message_id
                pending.discard(message_id)
                if reply.has_error():
                    # Errors made by the SuperLink (site unavailable) come from the SuperLink's
                    # node id, so the site is found through the message the error answers.
                    failed[node_of[message_id]] = _reason(reply)
                else:
                    usable.append(reply)
            for message_id, reason in unreadable.items():
                pending.discard(message_id)
                failed[node_of[message_id]] = reason
            if pending:
                time.sleep(POLL_S)
        failed.update({node_of[mid]: f"no answer within {timeout:.0f} s" for mid in pending})
        self.phases["collect"] = time.monotonic() - started - self.phases["send"]
        return usable, failed

    def _decoded(self, replies: list[Message], failed: dict[int, str]) -> list[Message]:
        """Replies with full weights; a reply that cannot be decoded counts as the site failing."""
        decoded = []
        for reply in replies:
            try:
                decoded.append(self.view.decode_update(reply))
            except FederationError as exc:
                failed[reply.metadata.src_node_id] = exc.message
        return decoded

    def _connected(self) -> set[int]:
        return set(self.grid.get_node_ids())

    def _node_fingerprints(self) -> dict[int, str]:
        result = {}
        for node in self.grid.get_nodes():
            try:
                result[node.node_id] = fingerprint(load_pem_public_key(node.public_key))
            except ValueError:
                result[node.node_id] = ""
        return result

    # --- phases --------------------------------------------------------------------------------

    def enrol(self) -> None:
        """Wait for ``min_sites`` SuperNodes, ask each for its task, keep those that can take part."""
        settings = self.settings
        deadline = time.monotonic() + settings.wait_sites_timeout
        while len(connected := self._connected()) < settings.min_sites:
            if time.monotonic() > deadline:
                raise FederationError(
                    f"only {len(connected)} of the required {settings.min_sites} sites connected within "
                    f"{settings.wait_sites_timeout:.0f} s",
                    hint="start the sites with `site-agent join`, or lower --min-sites",
                )
            time.sleep(0.5)
        config = ConfigRecord({"task": settings.task, "min-count": settings.min_count})
        probes = [
            Message(RecordDict({"config": config}), dst_node_id=node, message_type=MessageType.QUERY)
            for node in sorted(connected)
        ]
        replies, failed = self.exchange(probes, settings.wait_sites_timeout)
        keys = self._node_fingerprints()
        label_sets = {}
        for reply in replies:
            node = reply.metadata.src_node_id
            site = reply.content.config_records["site"]
            metrics = _metrics(reply)
            label_sets[node] = tuple(cast(list[str], site["labels"]))
            self.sites[node] = SiteRecord(
                node_id=node,
                node_fingerprint=keys.get(node, ""),
                site_fingerprint=str(site["site-fingerprint"]),
                train_examples=int(cast(int, metrics["train-examples"])),
                class_counts=[None if c < 0 else int(c) for c in cast(list[int], metrics["class-counts"])],
                held_out_split=str(site["held-out"]),
                training_set_digest=_training_set_digest(site),
            )
        if len(set(label_sets.values())) > 1:
            raise FederationError(
                f"the sites of task {settings.task!r} disagree on its label names or their order",
                hint="every site's site.yaml must list the same task.labels in the same order",
            )
        for node, reason in failed.items():
            self.progress.write("site-refused", node_fingerprint=keys.get(node, ""), reason=reason)
        self.progress.write(
            "sites",
            participating=[record.to_dict() for record in self.sites.values()],
            refused=len(failed),
        )
        if len(self.sites) < settings.min_sites:
            raise FederationError(
                f"only {len(self.sites)} of the required {settings.min_sites} sites can take part"
                + (": " + "; ".join(sorted(set(failed.values()))) if failed else ""),
                hint="check the sites' logs, approvals and task configuration",
            )
        self.labels = list(next(iter(label_sets.values())))

    def _drop(self, failed: dict[int, str], round_number: int) -> None:
        for node, reason in failed.items():
            record = self.sites.get(node)
            if record is not None and record.status == "active":
                record.status = f"left in round {round_number}"
                self.progress.write(
                    "site-lost", round=round_number, node_fingerprint=record.node_fingerprint, reason=reason
                )

    def _active(self, round_number: int) -> list[int]:
        """Participating sites still connected (the others are dropped with a reason)."""
        connected = self._connected()
        gone = {
            node: "the site disconnected"
            for node, record in self.sites.items()
            if record.status == "active" and node not in connected
        }
        self._drop(gone, round_number)
        return [node for node, record in self.sites.items() if record.status == "active"]

    def _require(self, count: int, what: str, failed: dict[int, str]) -> None:
        if count < self.settings.min_sites:
            reasons = "; ".join(sorted(set(failed.values())))
            raise FederationError(
                f"{what}: only {count} of the required {self.settings.min_sites} sites remain"
                + (f" ({reasons})" if reasons else ""),
                hint="restart the missing sites and submit the run again, or lower --min-sites",
            )

    def _site_config(self) -> dict[str, Any]:
        settings = self.settings
        return {
            "task": settings.task,
            "backbone": settings.backbone,
            "image-size": settings.image_size,
            "min-count": settings.min_count,
            "seed": settings.seed,
            DP_MODEL_KEY: settings.dp_model,
            NUM_ROUNDS_KEY: settings.num_rounds,
        }

    def train_round(self, number: int, arrays: ArrayRecord, strategy: Strategy) -> ArrayRecord:
        settings = self.settings
        active = self._active(number)
        self._require(len(active), f"round {number}", {})
        if isinstance(strategy, DifferentialPrivacyClientSideFixedClipping):
            strategy.num_sampled_clients = len(active)
        started = time.monotonic()
        outgoing, wire = self.view.outgoing(arrays)
        config = ConfigRecord(
            {
                **self._site_config(),
                "local-epochs": settings.local_epochs,
                "lr": settings.round_lr(number),
                "batch-size": settings.batch_size,
                "evaluate-incoming": number > 1,
                ENCODING_KEY: FP16_DELTA if settings.compress_updates else PACKED_FLOAT32,
                **wire,
            }
        )
        messages = list(strategy.configure_train(number, arrays, config, ParticipantGrid(self.grid, active)))
        for message in messages:
            message.content[next(iter(message.content.array_records))] = outgoing
        replies, failed = self.exchange(messages, settings.round_timeout)
        aggregating = time.monotonic()
        replies = self._decoded(replies, failed)
        self._drop(failed, number)
        self._require(len(replies), f"round {number}", failed)
        new_arrays, metrics = strategy.aggregate_train(number, replies)
        self.phases["aggregate"] = time.monotonic() - aggregating
        if new_arrays is None:
            self.progress.write("round-skipped", round=number, reason="a site dropped out of a DP round")
            new_arrays = arrays
        for reply in replies:
            record = self.sites[reply.metadata.src_node_id]
            record.rounds += 1
            record.dp_sgd = site_privacy(reply)
        checkpointing = time.monotonic()
        self._checkpoint(number, new_arrays)
        self.phases["checkpoint"] = time.monotonic() - checkpointing
        wall = time.monotonic() - started
        self._record_round(number, replies, metrics or MetricRecord(), wall)
        return new_arrays

    def _record_round(self, number: int, replies: list[Message], metrics: MetricRecord, wall: float) -> None:
        slowest = max(float(cast(float, _metrics(reply)["work-seconds"])) for reply in replies)
        entry = {
            "round": number,
            "rounds": self.settings.num_rounds,
            "sites": len(replies),
            "train_loss": metrics.get("train-loss"),
            "train_examples": metrics.get("num-examples"),
            "previous_global": {
                key.removeprefix("eval-"): value for key, value in metrics.items() if key.startswith("eval-")
            },
            "wall_seconds": wall,
            "phase_seconds": dict(self.phases),
            "slowest_site_seconds": slowest,
            "overhead_seconds": max(wall - slowest, 0.0),
        }
        self.history.append(entry)
        self.progress.write("round", **entry)

    def _checkpoint(self, number: int, arrays: ArrayRecord) -> None:
        folder = self.out_dir / CHECKPOINTS
        folder.mkdir(parents=True, exist_ok=True)
        payload = {
            "round": number,
            "state_dict": arrays.to_torch_state_dict(),
            "build": {
                "backbone": self.settings.backbone,
                "num_classes": len(self.labels),
                "image_size": self.settings.image_size,
                "dp_model": self.settings.dp_model,
            },
            "label_names": self.labels,
        }
        path = folder / f"round-{number:03d}.pt"
        torch.save(payload, path)
        tmp = folder / f".{GLOBAL_CHECKPOINT}.tmp"
        tmp.unlink(missing_ok=True)
        os.link(path, tmp)
        os.replace(tmp, folder / GLOBAL_CHECKPOINT)

    def final_evaluation(self, arrays: ArrayRecord) -> dict[str, Any]:
        active = self._active(self.settings.num_rounds + 1)
        outgoing, wire = self.view.outgoing(arrays)
        config = ConfigRecord({**self._site_config(), **wire})
        messages = [
            Message(
                RecordDict({"arrays": outgoing, "config": config}),
                dst_node_id=node,
                message_type=MessageType.EVALUATE,
            )
            for node in active
        ]
        replies, failed = self.exchange(messages, self.settings.round_timeout)
        self._drop(failed, self.settings.num_rounds + 1)
        self._require(len(replies), "final evaluation", failed)
        for reply in replies:
            self.sites[reply.metadata.src_node_id].final_metrics = {
                key.removeprefix("eval-"): value
                for key, value in _metrics(reply).items()
                if key.startswith("eval-")
            }
        overall = aggregate_site_metrics([reply.content for reply in replies], "eval-examples")
        final: dict[str, Any] = {
            key.removeprefix("eval-"): value for key, value in overall.items() if key.startswith("eval-")
        }
        final["per_class"] = pool_per_class([_metrics(reply) for reply in replies])
        self.progress.write("final", metrics=final, sites=len(replies))
        return final

    # --- the whole run -------------------------------------------------------------------------

    def initial_arrays(self) -> ArrayRecord:
        torch.manual_seed(self.settings.seed)
        model = create_specialist(self.settings.backbone, len(self.labels), self.settings.image_size)
        if self.settings.dp_model:
            model = make_dp_compatible(model)
        return ArrayRecord(float_state(model))

    def run(self) -> dict[str, Any]:
        settings = self.settings
        self.enrol()
        arrays = self.initial_arrays()
        strategy = build_strategy(settings, len(self.sites))
        for number in range(1, settings.num_rounds + 1):
            arrays = self.train_round(number, arrays, strategy)
        final = self.final_evaluation(arrays)
        result = self._result(final, strategy)
        (self.out_dir / RESULT_FILE).write_text(dump_json(result), encoding="utf-8")
        self.progress.write("completed", result=RESULT_FILE)
        return result

    def _result(self, final: dict[str, Any], strategy: Strategy) -> dict[str, Any]:
        settings = self.settings
        dp = None
        if isinstance(strategy, DifferentialPrivacyClientSideFixedClipping):
            spent = strategy.privacy_spent()
            dp = {
                "mechanism": "gaussian, client-side fixed clipping, central noise (Flower)",
                "noise_multiplier": settings.dp_noise_multiplier,
                "clipping_norm": settings.dp_clipping_norm,
                "epsilon": spent.epsilon if spent and spent.num_releases else None,
                "delta": settings.dp_delta,
                "releases": spent.num_releases if spent else 0,
                "accounting": "rdp",
                "unit": "site (user-level)",
            }
        return {
            "status": "completed",
            "flower_run_id": str(self.run_id),
            "task": settings.task,
            "label_names": self.labels,
            "backbone": settings.backbone,
            "image_size": settings.image_size,
            "dp_model": settings.dp_model,
            "strategy": settings.strategy,
            "proximal_mu": settings.proximal_mu if settings.strategy == "fedprox" else None,
            "rounds": settings.num_rounds,
            "local_epochs": settings.local_epochs,
            "lr": settings.lr,
            "batch_size": settings.batch_size,
            "seed": settings.seed,
            "min_sites": settings.min_sites,
            "sites": [record.to_dict() for record in self.sites.values()],
            "final_metrics": final,
            "history": self.history,
            "dp": dp,
            "checkpoint": str(Path(CHECKPOINTS) / GLOBAL_CHECKPOINT),
        }
