"""DP-SGD for local training (Opacus): the spent ε, the budget guard, refused backbones, the config keys."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch
import yaml
from opacus.accountants import RDPAccountant
from opacus.accountants.utils import get_noise_multiplier
from torch import nn

from gsco_common.errors import ConfigError, ModelError
from gsco_common.keys import generate_key_pair
from registry.bundle.card import Card
from site_agent.cli.train_cmd import resolve_training
from site_agent.config import SiteConfig, render_site_template, site_key_paths, validate_site_config
from site_agent.data.config import DataConfig
from site_agent.export.bundle import export_bundle
from site_agent.training.run_dir import load_model
from site_agent.training.trainer import RunResult, resume_run, train_run
from specialist.data import SiteData
from specialist.training.callbacks import Callback, StepInfo
from specialist.training.checkpoint import load_checkpoint
from specialist.training.config import DPConfig, TrainingConfig
from specialist.training.dp import BudgetGuard, DPPlan, plan_dp

pytestmark = pytest.mark.slow
BUDGET = 8.0
DELTA = 1e-5
BATCH = 16
DP_TRAINING = TrainingConfig(
    image_size=28,
    epochs=1,
    batch_size=BATCH,
    device="cpu",
    dp=DPConfig(enabled=True, epsilon=BUDGET, delta=DELTA, max_grad_norm=1.0),
)


@pytest.fixture(scope="module")
def dp_run(
    tmp_path_factory: pytest.TempPathFactory,
    site_config: SiteConfig,
    tiny_data: DataConfig,
    tiny_site_data: SiteData,
) -> RunResult:
    """resnet18 (made DP-compatible) at 28 px, one epoch of DP-SGD on the tiny synthetic data."""
    site_dir = tmp_path_factory.mktemp("dp-site")
    training = DP_TRAINING
    return train_run(site_dir, site_config, tiny_data, "resnet18", training, site_data=tiny_site_data)


def test_dp_run_reports_the_epsilon_opacus_accountant_gives_within_the_budget(
    dp_run: RunResult, tiny_site_data: SiteData
) -> None:
    privacy = json.loads((dp_run.run_dir / "metrics.json").read_text())["privacy"]
    # the run's parameters, derived here independently: Poisson rate 1 / ceil(N / B), one epoch
    steps = math.ceil(len(tiny_site_data.split("train")) / BATCH)
    rate = 1.0 / steps
    noise = get_noise_multiplier(
        target_epsilon=BUDGET, target_delta=DELTA, sample_rate=rate, steps=steps, accountant="rdp"
    )
    accountant = RDPAccountant()
    accountant.history = [(noise, rate, steps)]
    expected = accountant.get_epsilon(delta=DELTA)
    assert (privacy["sample_rate"], privacy["steps"], privacy["noise_multiplier"]) == (rate, steps, noise)
    assert math.isfinite(privacy["epsilon"]) and 0 < privacy["epsilon"] <= BUDGET
    assert privacy["epsilon"] == pytest.approx(expected, rel=1e-9)
    assert privacy["epsilon"] > BUDGET - 0.5  # the noise is calibrated to spend (nearly) the whole budget
    assert privacy["notion"] == "sample-level (DP-SGD at the site)" and privacy["accountant"] == "rdp"
    assert privacy["delta"] == DELTA and privacy["budget_exhausted"] is False


def test_dp_model_has_no_batch_norm_and_reloads_from_its_checkpoint(dp_run: RunResult) -> None:
    model = load_model(dp_run.run_dir)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in model.modules())


def test_guard_stops_before_the_budget_would_be_exceeded() -> None:
    options = DPConfig(enabled=True, epsilon=2.0, delta=DELTA)
    plan = DPPlan(sample_rate=0.05, steps_per_epoch=20, planned_steps=1000, noise_multiplier=1.5,
                  expected_batch_size=16)  # fmt: skip
    guard = BudgetGuard(options, plan)
    taken = 0
    while guard.can_step():
        guard.record_step()
        taken += 1

    # the largest step count whose ε stays within the budget, by Opacus' accountant directly
    def epsilon(steps: int) -> float:
        accountant = RDPAccountant()
        accountant.history = [(1.5, 0.05, steps)]
        return accountant.get_epsilon(delta=DELTA)

    assert 0 < taken < plan.planned_steps
    assert epsilon(taken) <= 2.0 < epsilon(taken + 1)
    assert guard.exhausted and guard.report()["epsilon"] == pytest.approx(epsilon(taken))


def test_plan_calibrates_noise_for_the_planned_steps() -> None:
    plan = plan_dp(DPConfig(enabled=True, epsilon=1.0, delta=DELTA), num_images=1000, batch_size=50, epochs=3)
    assert (plan.steps_per_epoch, plan.planned_steps, plan.sample_rate) == (20, 60, 0.05)
    stronger = plan_dp(DPConfig(enabled=True, epsilon=8.0, delta=DELTA), 1000, 50, 3)
    assert plan.noise_multiplier > stronger.noise_multiplier > 0


def test_backbone_with_unfixable_batch_norm_is_refused_by_name_leaving_no_run(
    tmp_path, site_config: SiteConfig, tiny_data: DataConfig, tiny_site_data: SiteData
) -> None:
    training = DP_TRAINING.model_copy(update={"image_size": 32})
    with pytest.raises(
        ConfigError, match=r"backbone 'efficientnet_b4' cannot train with DP-SGD.*BatchNormAct2d"
    ):
        train_run(tmp_path, site_config, tiny_data, "efficientnet_b4", training, site_data=tiny_site_data)
    assert list((tmp_path / "runs").iterdir()) == []


def test_weights_refused_before_training_leave_no_run(
    tmp_path, site_config: SiteConfig, tiny_data: DataConfig, tiny_site_data: SiteData
) -> None:
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "resnet18.pt").write_bytes(b"")
    training = DP_TRAINING.model_copy(update={"image_size": 32, "weights_dir": tmp_path / "weights"})
    with pytest.raises(ModelError, match="cannot read weights file resnet18.pt"):
        train_run(tmp_path, site_config, tiny_data, "resnet18", training, site_data=tiny_site_data)
    assert list((tmp_path / "runs").iterdir()) == []


def test_dp_keys_in_site_yaml_and_flags_are_validated_by_name() -> None:
    raw = yaml.safe_load(render_site_template("S", "t", ["a", "b"], "x"))
    raw["training"]["dp"] = {"enabled": True, "epsilon": -1}
    with pytest.raises(ConfigError, match=r"training\.dp\.epsilon: "):
        validate_site_config(raw)
    raw["training"]["dp"] = {"enabled": True, "delta": 0.5}
    with pytest.raises(ConfigError, match=r"training\.dp\.delta: "):
        validate_site_config(raw)
    with pytest.raises(ConfigError, match=r"--max-grad-norm: "):
        resolve_training(TrainingConfig(), {"--dp": True, "--max-grad-norm": 0.0})
    resolved = resolve_training(TrainingConfig(), {"--dp": True, "--epsilon": 3.0, "--delta": 1e-6})
    assert resolved.dp == DPConfig(enabled=True, epsilon=3.0, delta=1e-6)


def test_dp_run_exports_a_card_with_the_privacy_budget_and_the_audit(
    dp_run: RunResult, site_config: SiteConfig
) -> None:
    site_dir = dp_run.run_dir.parent.parent
    generate_key_pair(*site_key_paths(site_dir), os.environ["GSCO_KEY_PASSPHRASE"].encode())
    report = export_bundle(
        dp_run.run_dir, site_dir=site_dir, site=site_config, resamples=20, calibrated_mia=True
    )
    assert report.max_abs_diff <= 1e-3  # GroupNorm model exports with parity
    training = Card.read(report.path).data["training"]
    privacy = json.loads((dp_run.run_dir / "metrics.json").read_text())["privacy"]
    assert training["privacy"] == {key: privacy[key] for key in training["privacy"]}
    assert training["privacy"]["notion"] == "sample-level (DP-SGD at the site)"
    assert training["dp_epsilon"] == privacy["epsilon"] and training["privacy"]["delta"] == DELTA
    audit = training["membership_inference"]
    assert audit["auc"] == training["membership_inference_auc"] == report.membership_inference_auc
    assert audit["sampling"]["non_members_from"] == "test" and audit["calibrated"] is not None
    assert audit["bootstrap"] == {"resamples": 20, "seed": 0}


class _CtrlCAfterStep(Callback):
    def on_step_end(self, info: StepInfo) -> None:
        if info.step == 2:
            raise KeyboardInterrupt


def test_interrupted_dp_run_resumes_with_its_accountant_to_the_same_result(
    dp_run: RunResult, site_config: SiteConfig, tiny_data: DataConfig, tiny_site_data: SiteData, tmp_path
) -> None:
    with pytest.raises(KeyboardInterrupt):
        train_run(tmp_path, site_config, tiny_data, "resnet18", DP_TRAINING, site_data=tiny_site_data,
                  callbacks=[_CtrlCAfterStep()])  # fmt: skip
    run_dir = next((tmp_path / "runs").iterdir())
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["dp"]["history"][0][2] == 2
    resumed = resume_run(run_dir, site_data=tiny_site_data)
    privacy = json.loads((resumed.run_dir / "metrics.json").read_text())["privacy"]
    assert privacy == json.loads((dp_run.run_dir / "metrics.json").read_text())["privacy"]
    straight, again = load_model(dp_run.run_dir).state_dict(), load_model(resumed.run_dir).state_dict()
    assert all(torch.equal(straight[name], again[name]) for name in straight)
