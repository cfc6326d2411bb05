"""Explicit device selection: ``auto`` means CUDA when present (with AMP), else CPU."""

from __future__ import annotations

import torch

from gsco_common.errors import ConfigError


def select_device(name: str) -> torch.device:
    """Resolve ``auto`` / ``cpu`` / ``cuda`` / ``cuda:N``; asking for a missing GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"training.device is {name!r} but no CUDA device is available",
                hint="use --device cpu or auto",
            )
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"training.device {name!r}: only {torch.cuda.device_count()} CUDA device(s)")
        return device
    return torch.device("cpu")


def describe_device(device: torch.device, amp: bool) -> str:
    """One line for logs: which device, and whether mixed precision is on."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return f"device: {device} ({name}), mixed precision {'on' if amp else 'off'}"
    reason = "" if torch.cuda.is_available() else " (no CUDA device found)"
    return f"device: cpu{reason}, {torch.get_num_threads()} threads"
