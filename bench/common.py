"""What the benchmark scripts share: their command line and their environment.

Each script runs as ``python bench/<script>.py`` and puts the repository root on ``sys.path``
before it imports this module.
"""

from __future__ import annotations

import argparse
import os

PASSPHRASE = "bench-passphrase-123"


def bench_parser(doc: str | None) -> argparse.ArgumentParser:
    """A script's parser: its module docstring as help, and ``--write-docs``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write-docs", action="store_true", help="also store the results section in docs/")
    return parser


def bench_environment() -> None:
    """Keys made with :data:`PASSPHRASE`, no MLflow progress bars; variables already set win.

    Third-party telemetry is off already (importing any GSCo package does it).
    """
    os.environ.setdefault("GSCO_KEY_PASSPHRASE", PASSPHRASE)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
