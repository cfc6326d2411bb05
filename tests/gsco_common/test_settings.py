"""`validated`: a pydantic model or one ConfigError whose message names the key as the user wrote it."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gsco_common.errors import ConfigError
from gsco_common.settings import validated


class _Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threads: int = Field(default=2, ge=1)
    low: int = 0
    high: int = 1

    @model_validator(mode="after")
    def _ordered(self) -> _Limits:
        if self.low > self.high:
            raise ValueError("low must not exceed high")
        return self


def test_valid_values_give_the_model() -> None:
    assert validated(_Limits, {"threads": "4"}, what="x ") == _Limits(threads=4)


def test_the_error_names_the_key_with_its_prefix_and_the_hint() -> None:
    with pytest.raises(ConfigError) as caught:
        validated(_Limits, {"threads": 0}, what="", hint="fix this key", key_prefix=("site", "limits"))
    assert caught.value.message == "site.limits.threads: Input should be greater than or equal to 1"
    assert caught.value.hint == "fix this key" and caught.value.__cause__ is None


def test_a_hint_may_name_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        validated(
            _Limits, {"colour": "red"}, what="hub setting ", hint=lambda key: f"unset GSCO_{key.upper()}"
        )
    assert caught.value.message == "hub setting colour: Extra inputs are not permitted"
    assert caught.value.hint == "unset GSCO_COLOUR"


def test_a_whole_model_error_and_a_non_mapping_have_an_empty_key() -> None:
    with pytest.raises(ConfigError, match=r"^limits: Value error, low must not exceed high$"):
        validated(_Limits, {"low": 3, "high": 1}, what="", key_prefix=("limits",))
    with pytest.raises(ConfigError, match=r"^tasks.yaml: : Input should be a valid dictionary"):
        validated(_Limits, ["not", "a", "mapping"], what="tasks.yaml: ")
