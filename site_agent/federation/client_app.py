"""The site's Flower ClientApp: describe, train (with evaluation folded in) and evaluate.

Wire contract with the hub's ServerApp (:mod:`hub.federation.server_app`):

* ``query``: the hub asks which task the site trains. Reply: ConfigRecord ``site`` (task id,
  ordered label names, site key fingerprint, held-out split name, and ``training-set-digest``:
  the digest of the site's training set as a whole, the one a local card records; see
  ``registry.bundle.provenance``, no path, nothing per image) and MetricRecord ``metrics``
  (``train-examples`` and per-class ``class-counts``, counts below the threshold sent as -1; then
  every number of examples the site sends, here and below, is the sum of the classes shown, as an
  exact one would give the suppressed count back by subtraction).
* ``train``: the global weights plus a ConfigRecord (``task``, ``backbone``, ``image-size``,
  ``local-epochs``, ``lr``, ``batch-size``, ``seed``, ``evaluate-incoming``, ``min-count``,
  Flower's ``server-round``, FedProx's ``proximal-mu``, DP's ``clipping_norm``, ``dp-model``,
  ``num-rounds`` and ``update-encoding``). The site first evaluates the incoming global model on
  its validation split (this is the evaluation of the previous round, without a separate round
  trip), then trains. Reply: the new weights and one MetricRecord (``num-examples``,
  ``unit-weight``, ``train-loss``, ``work-seconds`` and the ``eval-*`` metrics of the incoming
  model), plus the ConfigRecord ``privacy`` (spent ε, δ, plan) from a site that trains with
  DP-SGD (:mod:`.private`). On the wire the weights travel packed both ways, mostly as float16
  differences; :mod:`.encoding` (the outermost mod) converts them, so the handlers here see
  per-tensor weights.
* ``evaluate``: the final global model on the site's held-out split: ``eval-*`` metrics plus
  per-class ``eval-sensitivity`` / ``eval-specificity`` / ``eval-support`` lists and the
  membership-inference AUC ``eval-mia-auc`` (computed at the site).

Only weights and aggregate metrics leave the site; a split smaller than the count threshold
reports no metrics at all. Site errors become error replies with the error's plain message.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping

from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from gsco_common.errors import FederationError, GscoError
from site_agent.federation.dp import optional_clipping_mod
from site_agent.federation.encoding import half_precision_mod
from site_agent.federation.private import reply_record, require_budget, run_guard, save_guard
from site_agent.federation.replies import error_reply
from site_agent.federation.session import SITE_MIN_COUNT, SiteSession, no_metrics, open_session
from specialist.federation.wire import DP_MODEL_KEY, NUM_ROUNDS_KEY, PRIVACY_RECORD
from specialist.models.specialist import Specialist

app = ClientApp(mods=[half_precision_mod, optional_clipping_mod])

Handler = Callable[[Message, Context], Message]


def site_errors(handler: Handler) -> Handler:
    """Answer a :class:`GscoError` with an error reply carrying only its code and plain message."""

    @functools.wraps(handler)
    def wrapper(msg: Message, context: Context) -> Message:
        try:
            return handler(msg, context)
        except GscoError as exc:
            return error_reply(msg, exc)

    return wrapper


def _config(msg: Message) -> ConfigRecord:
    records = list(msg.content.config_records.values())
    if len(records) != 1:
        raise FederationError("expected exactly one configuration record from the hub")
    return records[0]


def _arrays(msg: Message) -> ArrayRecord:
    records = list(msg.content.array_records.values())
    if len(records) != 1:
        raise FederationError("expected exactly one weights record from the hub")
    return records[0]


def load_global(model: Specialist, record: ArrayRecord) -> None:
    """Load the hub's weights; only integer buffers (batch-norm step counters) may be absent."""
    state = record.to_torch_state_dict()
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError:
        raise FederationError("the global model does not match this site's model architecture") from None
    own = model.state_dict()
    missing = [key for key in result.missing_keys if own[key].is_floating_point()]
    if missing or result.unexpected_keys:
        raise FederationError("the global model does not match this site's model architecture")


def weights_record(model: Specialist, keys: list[str]) -> ArrayRecord:
    """The model's weights under ``keys``, in that order (Flower's DP mods compare key order)."""
    state = model.state_dict()
    return ArrayRecord({key: Array(state[key].detach().cpu().numpy()) for key in keys})


def _prefixed(metrics: Mapping[str, float | list[float]]) -> dict[str, float | list[float]]:
    return {f"eval-{key.replace('_', '-')}": value for key, value in metrics.items()}


def _session_model(
    msg: Message, context: Context
) -> tuple[SiteSession, Specialist, ArrayRecord, ConfigRecord]:
    config = _config(msg)
    session = open_session(context.node_config)
    session.check_task(str(config["task"]))
    dp_model = bool(config.get(DP_MODEL_KEY, False))
    model = session.model(str(config["backbone"]), int(config["image-size"]), dp_model)
    arrays = _arrays(msg)
    load_global(model, arrays)
    return session, model, arrays, config


@app.query()
@site_errors
def describe(msg: Message, context: Context) -> Message:
    config = _config(msg)
    session = open_session(context.node_config)
    session.check_task(str(config["task"]))
    min_count = int(config.get("min-count", SITE_MIN_COUNT))
    counts = session.class_counts("train", min_count)
    site = ConfigRecord(
        {
            "task": session.config.task.id,
            "labels": session.label_names,
            "site-fingerprint": session.site_fingerprint,
            "held-out": session.held_out_split(),
            "training-set-digest": session.training_set_digest(),
        }
    )
    metrics = MetricRecord({"train-examples": session.examples("train", min_count), "class-counts": counts})
    return Message(RecordDict({"site": site, "metrics": metrics}), reply_to=msg)


@app.train()
@site_errors
def train(msg: Message, context: Context) -> Message:
    started = time.perf_counter()
    session, model, arrays, config = _session_model(msg, context)
    min_count = int(config.get("min-count", SITE_MIN_COUNT))
    evaluate_incoming = bool(config.get("evaluate-incoming", False))
    epochs, batch_size = int(config["local-epochs"]), int(config["batch-size"])
    examples = session.examples("train", min_count)
    if examples == 0:  # FedAvg weighs each update by it, and the exact size would give the classes away
        raise FederationError(
            "every class of this site's training split is below the count threshold: "
            "its update cannot be weighted without revealing them",
            hint="the site leaves this run; it takes part when it has more images of its classes",
        )
    guard = None
    if session.dp_sgd:
        total_epochs = epochs * int(config.get(NUM_ROUNDS_KEY, 1))
        images = len(session.training_images(model))
        guard = run_guard(context, session.config.training.dp, images, batch_size, total_epochs)
        require_budget(guard)
    incoming = session.evaluate(model, "val", min_count) if evaluate_incoming else no_metrics()
    result = session.train(
        model,
        epochs=epochs,
        lr=float(config["lr"]),
        batch_size=batch_size,
        seed=int(config.get("seed", 0)) + int(config.get("server-round", 0)),
        proximal_mu=float(config.get("proximal-mu", 0.0)),
        guard=guard,
    )
    metrics = MetricRecord(
        {
            "num-examples": examples,
            "unit-weight": 1,
            "train-loss": float(result["train_loss"]),
            "work-seconds": time.perf_counter() - started,
            **_prefixed(incoming),
        }
    )
    reply = RecordDict({"arrays": weights_record(model, list(arrays.keys())), "metrics": metrics})
    if guard is not None:
        save_guard(context, guard)
        reply[PRIVACY_RECORD] = reply_record(guard)
    return Message(reply, reply_to=msg)


@app.evaluate()
@site_errors
def evaluate(msg: Message, context: Context) -> Message:
    started = time.perf_counter()
    session, model, _, config = _session_model(msg, context)
    min_count = int(config.get("min-count", SITE_MIN_COUNT))
    held_out = session.held_out_report(model, min_count, seed=int(config.get("seed", 0)))
    metrics = MetricRecord({**_prefixed(held_out), "work-seconds": time.perf_counter() - started})
    return Message(RecordDict({"metrics": metrics}), reply_to=msg)
