"""Pretrained weights from a local folder only: hospitals are air-gapped, nothing is downloaded.

The weights folder (``weights_dir`` argument, else the ``GSCO_WEIGHTS_DIR`` environment
variable) holds one file per backbone, named by its stable name:
``<folder>/<backbone>.safetensors`` (preferred), ``.pth`` or ``.pt``. The file holds the state
dict of the backbone in timm's layout (torchvision's for ``alexnet``), e.g. the
``model.safetensors`` of the timm checkpoint named in the backbone's ``source``. The classifier
head is never loaded (its shape depends on the task); every other tensor must match by name and
shape, except position embeddings, which are resampled when the input size differs.

Nothing is ever downloaded: a ``weights_dir`` that names a URL or a hub id is refused. The
operator may pin the file's SHA-256 digest (``training.weights_sha256``, published by the
central team with the file); a file with another digest is refused before it is parsed. The
file's name and digest go on the model card (never its path).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import safetensors
import safetensors.torch
import torch
import torch.nn.functional as F
from timm.layers import resample_abs_pos_embed, resample_abs_pos_embed_nhwc
from torch import nn

from gsco_common.errors import ModelError
from gsco_common.paths import not_there
from gsco_common.text import first_items
from specialist.models.specialist import Specialist

log = logging.getLogger(__name__)

WEIGHTS_ENV = "GSCO_WEIGHTS_DIR"
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt")
_WRAPPER_KEYS = ("state_dict", "model", "state_dict_ema", "model_ema")
_SHOWN = 8
_REMOTE = re.compile(r"^(hf-hub|hf_hub|timm|https?|ftp|s3|gs):", re.IGNORECASE)


def normalise_sha256(value: str) -> str:
    """``sha256:<hex>`` or ``<hex>`` (any case) as 64 lower-case hex digits."""
    return value.strip().lower().removeprefix("sha256:")


def resolve_weights_dir(weights_dir: Path | None, environ: Mapping[str, str] = os.environ) -> Path | None:
    """The weights folder: the argument, else ``GSCO_WEIGHTS_DIR``, else none (random init)."""
    folder = weights_dir if weights_dir is not None else environ.get(WEIGHTS_ENV) or None
    if folder is None:
        return None
    if _REMOTE.match(str(folder)):
        raise ModelError(
            "pretrained weights are never downloaded: weights_dir must be a local folder, "
            "not a URL or hub id",
            hint="copy the weights file onto this machine (docs/site-agent.md) and name its folder",
        )
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ModelError(
            f"the weights folder {not_there(folder, 'folder')}",
            hint=f"create it or fix weights_dir / {WEIGHTS_ENV}",
        )
    return folder


def find_weights_file(folder: Path, backbone: str) -> Path | None:
    """``<folder>/<backbone><suffix>`` for the first suffix present, else None."""
    for suffix in WEIGHT_SUFFIXES:
        candidate = folder / f"{backbone}{suffix}"
        if candidate.is_file():
            return candidate
        if candidate.is_symlink() or candidate.exists():  # a broken link or a folder: not skipped
            raise ModelError(
                f"{candidate.name} in the weights folder is not a readable file",
                hint=f"put the weights in one file {backbone}{suffix}; a link must point to an existing file",
            )
    return None


def read_weights_bytes(path: Path) -> bytes:
    """The file's bytes, read once: the digest is taken of, and the tensors parsed from, these."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelError(
            f"cannot read weights file {path.name}: {type(exc).__name__}",
            hint="check that the file exists and is readable by the site agent",
        ) from exc


def parse_state_dict(data: bytes, name: str, safetensors_format: bool) -> dict[str, torch.Tensor]:
    """A safetensors or PyTorch file's tensors (no pickled code: ``weights_only=True``)."""
    try:
        if safetensors_format:
            raw: object = safetensors.torch.load(data)
        else:
            raw = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (
        EOFError,
        RuntimeError,
        ValueError,
        pickle.UnpicklingError,
        safetensors.SafetensorError,
    ) as exc:
        raise ModelError(
            f"cannot read weights file {name}: {type(exc).__name__}",
            hint="use a safetensors file or a PyTorch state dict saved with torch.save",
        ) from exc
    while isinstance(raw, Mapping) and any(isinstance(raw.get(k), Mapping) for k in _WRAPPER_KEYS):
        raw = next(raw[k] for k in _WRAPPER_KEYS if isinstance(raw.get(k), Mapping))
    if not isinstance(raw, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in raw.items()
    ):
        raise ModelError(f"weights file {name} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in raw.items()}


def check_sha256(data: bytes, name: str, expected: str | None) -> str:
    """The hex digest of ``data``; refuses a file whose digest differs from the pinned ``expected``."""
    actual = hashlib.sha256(data).hexdigest()
    if expected is not None and actual != normalise_sha256(expected):
        raise ModelError(
            f"weights file {name} has sha256 {actual}, but training.weights_sha256 pins "
            f"{normalise_sha256(expected)}",
            hint="this is not the file the central team published: copy it again and compare its sha256",
        )
    return actual


def load_backbone_weights(model: Specialist, path: Path, expected_sha256: str | None = None) -> None:
    """Load ``path`` into ``model.net``, skipping the classifier head; strict on everything else.

    The file is read once: its digest is checked (against ``expected_sha256`` when pinned) before
    the bytes are parsed, and the tensors loaded are those of the bytes whose digest goes with
    the file name into ``model.pretrained`` (a file replaced meanwhile changes neither).
    """
    data = read_weights_bytes(path)
    sha256 = check_sha256(data, path.name, expected_sha256)
    state = parse_state_dict(data, path.name, path.suffix == ".safetensors")
    del data
    target = model.net.state_dict()
    head = model.head_name + "."
    source = {k: v for k, v in state.items() if not k.startswith(head)}
    wanted = {k: v for k, v in target.items() if not k.startswith(head)}
    missing = sorted(k for k in wanted.keys() - source.keys() if not k.endswith("num_batches_tracked"))
    unexpected = sorted(source.keys() - wanted.keys())
    mismatched: list[str] = []
    loadable: dict[str, torch.Tensor] = {}
    for key in sorted(wanted.keys() & source.keys()):
        tensor = source[key]
        if tensor.shape != wanted[key].shape:
            tensor = _resample(key, tensor, wanted[key].shape, model.net)
        if tensor is None:
            mismatched.append(f"{key}: file {list(source[key].shape)} vs model {list(wanted[key].shape)}")
            continue
        loadable[key] = tensor
    problems = [
        _listing("missing in file", missing),
        _listing("unexpected in file", unexpected),
        _listing("shape mismatch", mismatched),
    ]
    problems = [p for p in problems if p]
    if problems:
        raise ModelError(
            f"weights file {path.name} does not fit backbone {model.backbone!r}: " + "; ".join(problems),
            hint=f"the file must hold the state dict of {model.backbone} in timm/torchvision layout",
        )
    model.net.load_state_dict(loadable, strict=False)
    model.pretrained = {"file": path.name, "sha256": sha256}
    log.info("loaded pretrained weights for %s from the weights folder (%s)", model.backbone, path.name)


def save_backbone_weights(model: Specialist, path: Path) -> None:
    """Write ``model.net``'s weights without the head, in the weights-folder format."""
    head = model.head_name + "."
    tensors = {
        k: v.detach().cpu().contiguous().clone()
        for k, v in model.net.state_dict().items()
        if not k.startswith(head)
    }
    safetensors.torch.save_file(tensors, str(path))


def _resample(key: str, tensor: torch.Tensor, shape: torch.Size, net: nn.Module) -> torch.Tensor | None:
    """Resize position embeddings trained at another input size; None if not resizable."""
    out: torch.Tensor | None = None
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "pos_embed" and tensor.ndim == 4:
        out = resample_abs_pos_embed_nhwc(tensor, list(shape[1:3]))
    elif leaf == "pos_embed" and tensor.ndim == 3 and hasattr(net, "patch_embed"):
        prefix = 0 if getattr(net, "no_embed_class", False) else int(getattr(net, "num_prefix_tokens", 1))
        grid = round((tensor.shape[1] - prefix) ** 0.5)
        if grid * grid == tensor.shape[1] - prefix:
            out = resample_abs_pos_embed(
                tensor, list(net.patch_embed.grid_size), old_size=[grid, grid], num_prefix_tokens=prefix
            )
    elif leaf in ("rel_pos_h", "rel_pos_w") and tensor.ndim == 2:
        out = F.interpolate(tensor.T[None], size=shape[0], mode="linear")[0].T
    if out is None or out.shape != shape:
        return None
    return out


def _listing(what: str, items: list[str]) -> str:
    if not items:
        return ""
    return f"{what}: {first_items(items, _SHOWN)}"
