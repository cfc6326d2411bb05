"""site.yaml: the template documents the real defaults; validation names keys; env and flag precedence."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gsco_common.errors import ConfigError
from site_agent.cli.train_cmd import resolve_training
from site_agent.config import (
    ENV_OVERRIDES,
    SiteConfig,
    data_override,
    load_site_config,
    render_site_template,
    validate_site_config,
)
from site_agent.data.config import DataConfig
from specialist.training.config import TrainingConfig


def _site(tmp_path: Path, **changes: object) -> Path:
    raw = yaml.safe_load(render_site_template("Site", "task-1", ["a", "b"], "x-ray"))
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(raw))
    return tmp_path


def test_template_states_the_real_defaults() -> None:
    config = SiteConfig.model_validate(yaml.safe_load(render_site_template("S", "t", ["a", "b"], "m")))
    assert config.training == TrainingConfig()
    assert config.training.augmentation.hflip == "auto"
    assert config.training.early_stopping.monitor == "balanced_accuracy"
    assert config.data is None and config.registry.home is None


def test_template_quotes_free_text_safely() -> None:
    text = render_site_template("North 2", "t", ["no: finding", "#hash"], 'CT "head" # axial')
    config = SiteConfig.model_validate(yaml.safe_load(text))
    assert config.task.labels == ["no: finding", "#hash"]
    assert config.task.modality == 'CT "head" # axial'


def test_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"training\.lr"):
        load_site_config(_site(tmp_path, training__lr=-1))
    with pytest.raises(ConfigError, match=r"training\.early_stopping\.monitor"):
        load_site_config(_site(tmp_path, training__early_stopping__monitor="vibes"))
    with pytest.raises(ConfigError, match=r"trainnig"):
        load_site_config(_site(tmp_path, trainnig={"epochs": 2}))
    with pytest.raises(ConfigError, match=r"data\.val_fraction"):
        load_site_config(_site(tmp_path, data={"path": "d.npz", "val_fraction": 2}))


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no site.yaml"):
        load_site_config(tmp_path)
    (tmp_path / "site.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="line"):
        load_site_config(tmp_path)
    (tmp_path / "site.yaml").write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_site_config(tmp_path)


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    site = _site(tmp_path, training__device="cpu", registry__home="/from/file")
    environ = {"GSCO_HOME": "/from/env", "GSCO_WEIGHTS_DIR": "/weights", "GSCO_DEVICE": "auto"}
    config = load_site_config(site, environ=environ)
    assert config.registry.home == Path("/from/env")
    assert config.training.weights_dir == Path("/weights") and config.training.device == "auto"
    assert load_site_config(site, environ={}).registry.home == Path("/from/file")
    assert set(ENV_OVERRIDES) >= {"GSCO_HOME", "GSCO_WEIGHTS_DIR"}


def test_a_bad_environment_value_names_variable_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"GSCO_DEVICE.*training\.device|training\.device.*GSCO_DEVICE"):
        load_site_config(_site(tmp_path), environ={"GSCO_DEVICE": "quantum"})


def test_flags_override_environment_and_file(tmp_path: Path) -> None:
    config = load_site_config(
        _site(tmp_path, training__epochs=7, training__batch_size=8), environ={"GSCO_DEVICE": "cpu"}
    )
    resolved = resolve_training(
        config.training, {"--epochs": 2, "--device": None, "--patience": 3, "--hflip": True}
    )
    assert resolved.epochs == 2  # flag > file
    assert resolved.batch_size == 8  # file > default
    assert resolved.device == "cpu"  # env > default
    assert resolved.early_stopping.patience == 3 and resolved.augmentation.hflip is True
    assert resolve_training(config.training, {"--device": "auto"}).device == "auto"  # flag > env
    with pytest.raises(ConfigError, match="--epochs"):
        resolve_training(config.training, {"--epochs": 0})


def test_relative_data_path_is_relative_to_the_site(tmp_path: Path) -> None:
    config = load_site_config(
        _site(tmp_path, data={"path": "images/data.npz", "test_fraction": 0.2}), environ={}
    )
    assert config.data is not None and config.data.path == (tmp_path / "images" / "data.npz").resolve()


def test_data_flag_keeps_the_site_split_settings(tmp_path: Path) -> None:
    base = DataConfig(path=Path("/site/data.csv"), kind="csv", test_fraction=0.2, label_aliases={"0": "a"})
    override = data_override(base, Path("other.npz"))
    assert override.path == Path("other.npz").resolve() and override.kind == "auto"
    assert override.test_fraction == 0.2 and override.label_aliases == {"0": "a"}
    assert data_override(None, tmp_path).test_fraction == DataConfig(path=tmp_path).test_fraction


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("resize", "crop", "training.resize"),
        ("tta", "vflip", "training.tta"),
        ("weights_sha256", "/weights/resnet18.safetensors", "training.weights_sha256"),
    ],
)
def test_input_and_weights_settings_are_validated_naming_the_key(key: str, value: str, message: str) -> None:
    raw = yaml.safe_load(render_site_template("S", "t", ["a", "b"], "breast ultrasound"))
    raw["training"][key] = value
    with pytest.raises(ConfigError, match=message):
        validate_site_config(raw)


def test_seeds_are_bounded_to_32_bits_naming_the_key(tmp_path: Path) -> None:
    """A seed past 64 bits crashed seed_everything (OverflowError) after the run folder existed."""
    assert load_site_config(_site(tmp_path, training__seed=2**32 - 1)).training.seed == 2**32 - 1
    with pytest.raises(ConfigError, match=r"training\.seed"):
        load_site_config(_site(tmp_path, training__seed=2**64))
    with pytest.raises(ConfigError, match="--seed"):
        resolve_training(TrainingConfig(), {"--seed": 2**32})


def test_an_unreadable_or_non_utf8_site_yaml_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = _site(tmp_path)
    (site / "site.yaml").write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ConfigError, match="site.yaml cannot be read \\(UnicodeDecodeError\\)"):
        load_site_config(site)

    def denied(self: Path, *args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", denied)
    with pytest.raises(ConfigError, match="site.yaml cannot be read \\(PermissionError\\)"):
        load_site_config(site)
