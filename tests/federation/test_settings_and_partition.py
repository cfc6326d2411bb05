"""Run settings agree with the Flower app's declared run config; non-IID slices really differ."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from gsco_common.errors import ConfigError, DataError
from hub.federation.orchestrate import app_dir
from hub.federation.partition import non_iid_indices, write_site_slices
from hub.federation.settings import RunSettings
from tests.federation.helpers import labels_of


def declared_config() -> dict[str, object]:
    pyproject = tomllib.loads((app_dir() / "pyproject.toml").read_text())
    return pyproject["tool"]["flwr"]["app"]["config"]


def test_every_setting_is_declared_in_the_app() -> None:
    # Flower only overrides run-config keys the app declares: a missing key would be silently ignored.
    settings = RunSettings(task="pneumonia", out_dir="/tmp/x")
    assert set(settings.to_run_config()) == set(declared_config())


def test_app_components_name_the_platform_apps() -> None:
    components = tomllib.loads((app_dir() / "pyproject.toml").read_text())["tool"]["flwr"]["app"][
        "components"
    ]
    assert components == {
        "serverapp": "hub.federation.server_app:app",
        "clientapp": "site_agent.federation.client_app:app",
    }


def test_run_config_round_trip(tmp_path: Path) -> None:
    settings = RunSettings(task="pneumonia", strategy="fedprox", proximal_mu=0.1, out_dir=str(tmp_path))
    path = settings.write_run_config(tmp_path / "run.toml")
    assert RunSettings.from_run_config(tomllib.loads(path.read_text())) == settings


def test_bad_run_config_names_the_key() -> None:
    with pytest.raises(ConfigError, match="min-sites"):
        RunSettings.from_run_config({"task": "pneumonia", "min-sites": 0})


def test_dp_needs_both_parameters() -> None:
    with pytest.raises(ValueError, match="dp-noise-multiplier and dp-clipping-norm"):
        RunSettings(task="pneumonia", dp_noise_multiplier=1.0)


def test_non_iid_slices_differ_in_size_and_balance() -> None:
    labels = np.repeat([0, 1], [400, 600])
    parts = non_iid_indices(labels, sites=3, seed=0)
    flat = np.concatenate(parts)
    assert len(flat) == len(set(flat.tolist())) == labels.size
    sizes = [len(part) for part in parts]
    assert sizes[0] > sizes[1] > sizes[2]
    shares = [float(np.mean(labels[part] == 1)) for part in parts]
    assert max(shares) - min(shares) > 0.2
    assert all(set(labels[part].tolist()) == {0, 1} for part in parts)


def test_slices_are_written_in_medmnist_layout(dev_data: Path, tmp_path: Path) -> None:
    paths = write_site_slices(dev_data, tmp_path, 2, limit=200)
    assert [path.name for path in paths] == ["site-1.npz", "site-2.npz"]
    assert sum(len(labels_of(path)) for path in paths) == 200


def test_too_many_sites_for_a_class_is_refused() -> None:
    with pytest.raises(DataError, match="would miss a class"):
        non_iid_indices(np.array([0, 0, 0, 0, 1]), sites=3)


def test_cosine_schedule_decays_over_the_rounds_and_constant_does_not() -> None:
    cosine = RunSettings(task="pneumonia", num_rounds=5, lr=0.01, min_lr_ratio=0.05)
    rates = [cosine.round_lr(number) for number in range(1, 6)]
    assert rates[0] == pytest.approx(0.01)
    assert all(later < earlier for earlier, later in zip(rates, rates[1:], strict=False))
    assert rates[-1] >= 0.01 * 0.05
    constant = cosine.model_copy(update={"lr_schedule": "constant"})
    assert {constant.round_lr(number) for number in range(1, 6)} == {0.01}
    with pytest.raises(ConfigError, match="lr-schedule"):
        RunSettings.from_run_config({"task": "pneumonia", "lr-schedule": "step"})
