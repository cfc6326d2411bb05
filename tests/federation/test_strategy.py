"""Example-weighted metric aggregation, pooled per-class rates and the strategy choice."""

from __future__ import annotations

import math

import pytest
from flwr.app import MetricRecord, RecordDict
from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping, FedAvg, FedProx

from hub.federation.settings import RunSettings
from hub.federation.strategy import aggregate_site_metrics, build_strategy, pool_per_class


def reply(metrics: dict[str, float | list[float]]) -> RecordDict:
    return RecordDict({"metrics": MetricRecord(metrics)})


def test_metrics_are_weighted_by_the_examples_behind_them() -> None:
    records = [
        reply(
            {
                "num-examples": 300,
                "train-loss": 1.0,
                "eval-examples": 10,
                "eval-accuracy": 0.5,
                "work-seconds": 2,
            }
        ),
        reply(
            {
                "num-examples": 100,
                "train-loss": 2.0,
                "eval-examples": 30,
                "eval-accuracy": 0.9,
                "work-seconds": 5,
            }
        ),
    ]
    result = aggregate_site_metrics(records, "num-examples")
    assert result["train-loss"] == pytest.approx((300 * 1.0 + 100 * 2.0) / 400)
    assert result["eval-accuracy"] == pytest.approx((10 * 0.5 + 30 * 0.9) / 40)
    assert result["num-examples"] == 400
    assert result["eval-examples"] == 40
    assert result["work-seconds"] == 5


def test_suppressed_site_metrics_do_not_count() -> None:
    records = [
        reply({"num-examples": 50, "eval-examples": 0, "eval-auc": math.nan}),
        reply({"num-examples": 50, "eval-examples": 20, "eval-auc": 0.8}),
    ]
    assert aggregate_site_metrics(records, "num-examples")["eval-auc"] == pytest.approx(0.8)
    only_suppressed = aggregate_site_metrics(records[:1], "num-examples")
    assert math.isnan(float(only_suppressed["eval-auc"]))


def test_per_class_rates_equal_those_of_the_pooled_sets() -> None:
    # site 1: class 0 support 20 (16 right), class 1 support 80 (60 right)
    # site 2: class 0 support 40 (20 right), class 1 support 10 (9 right)
    site1 = {"eval-examples": 100, "eval-support": [20, 80], "eval-sensitivity": [16 / 20, 60 / 80]}
    site2 = {"eval-examples": 50, "eval-support": [40, 10], "eval-sensitivity": [20 / 40, 9 / 10]}
    site1["eval-specificity"] = [60 / 80, 16 / 20]
    site2["eval-specificity"] = [9 / 10, 20 / 40]
    pooled = pool_per_class([MetricRecord(site1), MetricRecord(site2)])
    assert pooled["support"] == [60, 90]
    assert pooled["sensitivity"] == pytest.approx([36 / 60, 69 / 90])
    assert pooled["specificity"] == pytest.approx([69 / 90, 36 / 60])


def test_fedavg_by_default_fedprox_on_request() -> None:
    fedavg = build_strategy(RunSettings(task="t"), num_sites=2)
    fedprox = build_strategy(RunSettings(task="t", strategy="fedprox", proximal_mu=0.3), num_sites=2)
    assert type(fedavg) is FedAvg and fedavg.weighted_by_key == "num-examples"
    assert isinstance(fedprox, FedProx) and fedprox.proximal_mu == 0.3


def test_dp_wraps_the_strategy_with_equal_site_weights() -> None:
    settings = RunSettings(task="t", dp_noise_multiplier=1.0, dp_clipping_norm=0.5, dp_delta=1e-5)
    strategy = build_strategy(settings, num_sites=3)
    assert isinstance(strategy, DifferentialPrivacyClientSideFixedClipping)
    assert strategy.strategy.weighted_by_key == "unit-weight"
    assert strategy.noise_multiplier == 1.0 and strategy.clipping_norm == 0.5
    assert strategy.privacy_spent() is not None
