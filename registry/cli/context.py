"""Helpers shared by the `gsco-registry` command modules."""

from __future__ import annotations

import typer

from registry.config import RegistryConfig
from registry.service import Registry


def config_of(ctx: typer.Context) -> RegistryConfig:
    return ctx.find_root().obj


def open_registry(ctx: typer.Context) -> Registry:
    return Registry.open(config_of(ctx))
