"""Which Flower strategy aggregates a run, and how site metrics are combined.

FedAvg by default, FedProx on request (the strategy only sends ``proximal-mu``; the proximal
term lives in the site's training loss). With differential privacy the strategy is wrapped in
Flower's ``DifferentialPrivacyClientSideFixedClipping`` (sites clip, the hub adds noise) and
Flower's RDP accountant tracks (epsilon, delta); Flower's accounted mode averages sites with
equal weights, so a DP run weights by the constant ``unit-weight`` every site reports instead
of by its number of examples.
"""

from __future__ import annotations

import math
from typing import cast

from flwr.app import MetricRecord, RecordDict
from flwr.serverapp import NeighboringRelation, PrivacyConfig, RdpAccountant, SamplingMethod
from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping, FedAvg, FedProx, Strategy

from hub.federation.settings import RunSettings

TRAIN_WEIGHT = "num-examples"
EVAL_WEIGHT = "eval-examples"
DP_WEIGHT = "unit-weight"
SLOWEST = "work-seconds"


def _value_weight(key: str, metrics: MetricRecord) -> float:
    weight_key = EVAL_WEIGHT if key.startswith("eval-") else TRAIN_WEIGHT
    return float(cast(float, metrics.get(weight_key, 0.0)))


def aggregate_site_metrics(records: list[RecordDict], weighting_key: str) -> MetricRecord:
    """Example-weighted means of the sites' metrics.

    Training metrics are weighted by ``num-examples``, evaluation metrics (``eval-*``) by
    ``eval-examples``; a site that suppressed a metric (NaN, zero examples) does not count.
    Example counts are summed and ``work-seconds`` keeps the slowest site. ``weighting_key``
    (Flower's strategy weight) only decides how the weights are averaged, not the metrics.
    """
    del weighting_key
    metrics = [next(iter(record.metric_records.values())) for record in records]
    keys = dict.fromkeys(key for record in metrics for key in record.keys())
    result = MetricRecord()
    for key in keys:
        values = [record[key] for record in metrics if key in record]
        if key in (TRAIN_WEIGHT, EVAL_WEIGHT):
            result[key] = sum(cast(float, value) for value in values)
        elif key == SLOWEST:
            result[key] = max(cast(float, value) for value in values)
        elif key != DP_WEIGHT and all(not isinstance(value, list) for value in values):
            pairs = [
                (float(cast(float, record[key])), _value_weight(key, record))
                for record in metrics
                if key in record
            ]
            usable = [(value, weight) for value, weight in pairs if math.isfinite(value) and weight > 0]
            total = sum(weight for _, weight in usable)
            result[key] = sum(value * weight for value, weight in usable) / total if total else math.nan
    return result


def pool_per_class(metrics: list[MetricRecord]) -> dict[str, list[float | None]]:
    """Per-class sensitivity and specificity of the pooled held-out sets of all sites.

    Sensitivity is weighted by each site's class support and specificity by the class's negatives
    (examples minus support), which gives exactly the pooled rates. Classes a site suppressed
    (support 0, NaN rates) do not count.
    """
    supports = [cast(list[float], record.get("eval-support", [])) for record in metrics]
    examples = [float(cast(float, record.get(EVAL_WEIGHT, 0.0))) for record in metrics]
    classes = max((len(support) for support in supports), default=0)
    result: dict[str, list[float | None]] = {
        "support": [sum(s[c] for s in supports if len(s) > c) for c in range(classes)]
    }
    for key in ("sensitivity", "specificity"):
        pooled: list[float | None] = []
        for cls in range(classes):
            pairs = []
            for record, support, total in zip(metrics, supports, examples, strict=True):
                if len(support) <= cls or support[cls] <= 0 or f"eval-{key}" not in record:
                    continue
                weight = support[cls] if key == "sensitivity" else total - support[cls]
                pairs.append((cast(list[float], record[f"eval-{key}"])[cls], weight))
            usable = [(value, weight) for value, weight in pairs if math.isfinite(value) and weight > 0]
            denominator = sum(weight for _, weight in usable)
            pooled.append(sum(v * w for v, w in usable) / denominator if denominator else None)
        result[key] = pooled
    return result


def build_strategy(settings: RunSettings, num_sites: int) -> Strategy:
    """The strategy for ``num_sites`` participating sites (all of them train every round)."""
    common = {
        "fraction_train": 1.0,
        "fraction_evaluate": 1.0,
        "min_train_nodes": settings.min_sites,
        "min_evaluate_nodes": settings.min_sites,
        "min_available_nodes": settings.min_sites,
        "weighted_by_key": DP_WEIGHT if settings.dp_enabled else TRAIN_WEIGHT,
        "train_metrics_aggr_fn": aggregate_site_metrics,
        "evaluate_metrics_aggr_fn": aggregate_site_metrics,
    }
    base: FedAvg
    if settings.strategy == "fedprox":
        base = FedProx(proximal_mu=settings.proximal_mu, **common)
    else:
        base = FedAvg(**common)
    if not settings.dp_enabled:
        return base
    accountant = RdpAccountant(
        PrivacyConfig(
            target_delta=settings.dp_delta,
            population_size=num_sites,
            neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
            sampling_method=SamplingMethod.NO_AMPLIFICATION,
        )
    )
    return DifferentialPrivacyClientSideFixedClipping(
        base,
        noise_multiplier=settings.dp_noise_multiplier,
        clipping_norm=settings.dp_clipping_norm,
        num_sampled_clients=num_sites,
        accountant=accountant,
    )
