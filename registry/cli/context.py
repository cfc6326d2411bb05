"""Helpers shared by the `gsco-registry` command modules."""

from __future__ import annotations

from typing import Annotated

import typer

from registry.config import RegistryConfig
from registry.service import Registry

# The reason every audited change asks for, declared once for all commands.
AuditReason = Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")]


def config_of(ctx: typer.Context) -> RegistryConfig:
    return ctx.find_root().obj


def open_registry(ctx: typer.Context) -> Registry:
    return Registry.open(config_of(ctx))
