"""The software and CPU a study ran on: the same seeds give slightly other weights elsewhere.

Recorded in ``study.json`` so that two studies compared with each other can be seen to have run
alike (see docs/studies/README.md, "Reproducibility"). Versions and the CPU model only: nothing
that names a host, a user or a path.
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "torchvision", "timm", "numpy", "onnxruntime", "scikit-learn", "faiss-cpu")


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name (Linux), else what :func:`platform.processor` says."""
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment() -> dict[str, Any]:
    """Python, the numerical packages' versions, the machine type and the CPU model."""
    return {
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
        "machine": platform.machine(),
        "cpu": cpu_model(),
    }


def environment_line(record: dict[str, Any] | None) -> str | None:
    """One Markdown line for ``study.md`` (None for a study.json from before it was recorded)."""
    if not record:
        return None
    packages = ", ".join(f"{name} {v}" for name, v in record["packages"].items() if v)
    return f"Environment: Python {record['python']}, {packages}; {record['cpu']} ({record['machine']})."
