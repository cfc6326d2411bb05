"""The approval policy file (``--policy``): any content gives a Policy or a ConfigError."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from registry.policy.policy import Policy, load_policy
from tests.properties.hostile import PROPERTY, WRONG_JSON, mutated_bytes, only_own_errors

DEFAULT = resources.files("registry.policy").joinpath("default.yaml").read_bytes()
KEYS = st.sampled_from(["checks", "metric_floor", "deny_list", "site_signature", "auc", "extra"])
YAML_KEYS = KEYS | st.integers() | st.booleans() | st.none() | st.floats(allow_nan=True)
HOSTILE_MAPPINGS = st.recursive(
    WRONG_JSON, lambda inner: st.dictionaries(YAML_KEYS, inner, max_size=3), max_leaves=8
)


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("policy") / "policy.yaml"


def _load(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    policy = load_policy(path)
    assert (
        isinstance(policy, Policy) and policy.enabled("site_signature") and policy.enabled("site_key_active")
    )


@PROPERTY
@given(data=mutated_bytes(DEFAULT))
def test_a_damaged_policy_file_is_a_config_error_or_keeps_the_signature_checks(
    path: Path, data: bytes
) -> None:
    only_own_errors(lambda: _load(path, data))


@PROPERTY
@given(document=HOSTILE_MAPPINGS)
def test_a_policy_of_wrong_types_is_a_config_error_or_keeps_the_signature_checks(
    path: Path, document: Any
) -> None:
    only_own_errors(lambda: _load(path, yaml.safe_dump(document, allow_unicode=True).encode()))
