"""Validate a configuration mapping with pydantic; the first error names its key as the user wrote it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gsco_common.errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)


def validated(
    model: type[Model],
    values: Any,
    *,
    what: str,
    hint: str | Callable[[str], str] | None = None,
    key_prefix: tuple[str, ...] = (),
) -> Model:
    """``model`` from ``values``, or ``ConfigError("<what><key>: <reason>")`` (no pydantic dump).

    ``key`` is ``key_prefix`` and the error's location joined with dots (``data.path``); ``hint``
    may be a function of that key (to name the environment variable that sets it).
    """
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join([*key_prefix, *(str(part) for part in first["loc"])])
        raise ConfigError(
            f"{what}{key}: {first['msg']}", hint=hint(key) if callable(hint) else hint
        ) from None
