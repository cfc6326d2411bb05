"""DP-SGD at a site inside a federated run: the ClientApp called in-process with real messages.

One accountant per run (kept in the ClientApp's context state) counts every local step of every
round; the spent ε it reports equals Opacus' own accountant for the parameters that ran, and a
round the budget cannot pay for is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from opacus.accountants import RDPAccountant
from opacus.accountants.utils import get_noise_multiplier

from hub.federation.partition import write_site_slices
from hub.federation.rounds import float_state
from site_agent.config import render_site_template
from site_agent.federation.client_app import app
from site_agent.federation.private import STATE_RECORD
from specialist.models.factory import create_specialist
from specialist.training.dp import make_dp_compatible
from tests.federation.helpers import hub_message

IMAGE_SIZE = 28
EPSILON, DELTA, BATCH = 4.0, 1e-5, 16


@pytest.fixture(scope="module")
def dp_site(dev_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site whose site.yaml turns DP-SGD on, with a few dozen training images."""
    folder = tmp_path_factory.mktemp("dp-site")
    data = write_site_slices(dev_data, folder / "data", 2, seed=1, limit=160)[0]
    config = yaml.safe_load(
        render_site_template("site a", "pneumonia", ["normal", "pneumonia"], "chest X-ray")
    )
    config["data"] = {"path": str(data)}
    config["training"].update({"num_threads": 1, "dp": {"enabled": True, "epsilon": EPSILON, "delta": DELTA}})
    (folder / "site.yaml").write_text(yaml.safe_dump(config))
    return folder


@pytest.fixture(scope="module")
def dp_weights() -> ArrayRecord:
    torch.manual_seed(0)
    model = make_dp_compatible(create_specialist("resnet18", 2, IMAGE_SIZE, pretrained=False))
    return ArrayRecord(float_state(model))


def train_message(weights: ArrayRecord, server_round: int, rounds: int, dp_model: bool = True) -> Message:
    config = ConfigRecord(
        {
            "task": "pneumonia",
            "backbone": "resnet18",
            "image-size": IMAGE_SIZE,
            "min-count": 10,
            "seed": 0,
            "local-epochs": 1,
            "lr": 0.01,
            "batch-size": BATCH,
            "server-round": server_round,
            "num-rounds": rounds,
            "dp-model": dp_model,
        }
    )
    return hub_message(MessageType.TRAIN, RecordDict({"arrays": weights, "config": config}))


def run_context(site: Path) -> Context:
    """One run's context: Flower keeps ``state`` for the run between the messages of one node."""
    return Context(
        run_id=1, node_id=7, node_config={"site-dir": str(site)}, state=RecordDict(), run_config={}
    )


def privacy(reply: Message) -> ConfigRecord:
    assert not reply.has_error(), reply.error.reason if reply.has_error() else ""
    return reply.content.config_records["privacy"]


def opacus_epsilon(noise: float, sample_rate: float, steps: int) -> float:
    """The expectation, from Opacus' RDP accountant alone."""
    accountant = RDPAccountant()
    accountant.history = [(noise, sample_rate, steps)]
    return accountant.get_epsilon(delta=DELTA)


@pytest.mark.slow
def test_the_accountant_composes_over_the_rounds_of_a_run(dp_site: Path, dp_weights: ArrayRecord) -> None:
    context = run_context(dp_site)
    first = privacy(app(train_message(dp_weights, 1, rounds=2), context))
    second = privacy(app(train_message(dp_weights, 2, rounds=2), context))
    rate, noise = float(first["sample-rate"]), float(first["noise-multiplier"])
    per_round = round(1 / rate)  # Poisson steps per epoch: ceil(N / B), one local epoch per round
    # the noise was calibrated once for both rounds' steps
    assert noise == pytest.approx(
        get_noise_multiplier(
            target_epsilon=EPSILON, target_delta=DELTA, sample_rate=rate, steps=2 * per_round
        )
    )
    assert (first["steps"], second["steps"]) == (per_round, 2 * per_round)
    assert float(first["epsilon"]) == pytest.approx(opacus_epsilon(noise, rate, per_round), rel=1e-9)
    assert float(second["epsilon"]) == pytest.approx(opacus_epsilon(noise, rate, 2 * per_round), rel=1e-9)
    assert float(first["epsilon"]) < float(second["epsilon"]) <= EPSILON
    assert second["noise-multiplier"] == noise and second["delta"] == DELTA
    assert set(second.keys()) == {
        "epsilon", "epsilon-budget", "delta", "accountant", "max-grad-norm",
        "noise-multiplier", "sample-rate", "steps", "budget-exhausted",
    }  # fmt: skip


@pytest.mark.slow
def test_the_budget_guard_refuses_the_round_it_cannot_pay_for(dp_site: Path, dp_weights: ArrayRecord) -> None:
    """Planned for one round, the budget is spent after it: round 2 is refused, nothing counted."""
    context = run_context(dp_site)
    first = privacy(app(train_message(dp_weights, 1, rounds=1), context))
    assert float(first["epsilon"]) <= EPSILON
    saved = json.loads(str(context.state.config_records[STATE_RECORD]["state"]))
    refused = app(train_message(dp_weights, 2, rounds=1), context)
    assert refused.has_error()
    assert "DP-SGD budget is spent" in refused.error.reason
    assert f"after {first['steps']} steps" in refused.error.reason
    assert (
        json.loads(str(context.state.config_records[STATE_RECORD]["state"]))["accountant"]["history"]
        == (saved["accountant"]["history"])
    )


def test_a_dp_site_refuses_a_run_whose_model_has_batch_norm(dp_site: Path, dp_weights: ArrayRecord) -> None:
    reply = app(train_message(dp_weights, 1, rounds=1, dp_model=False), run_context(dp_site))
    assert reply.has_error()
    assert "trains with DP-SGD" in reply.error.reason and "batch norm" in reply.error.reason
