"""Export a specialist to one anonymized ONNX file, proven equal to PyTorch on real images.

Order matters for privacy: the model is exported in memory, anonymized, checked, PHI-scanned
and compared with PyTorch *before* anything is written, so a failing export leaves no file.

A ViT-B is ~340 MB of weights, so the proto is never copied: it is anonymized in place and
serialized once, and those bytes serve the checker, onnxruntime, the digest and the file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import onnxscript.optimizer
import torch
from google.protobuf.message import EncodeError
from onnx import ModelProto

from gsco_common.errors import ExportError, PrivacyError
from gsco_common.text import first_items
from registry.bundle.card import INPUT_NAME, OUTPUT_NAMES
from registry.bundle.phi import onnx_strings, scan_strings, system_identifiers
from specialist.export.anonymize import anonymize_in_place
from specialist.models.specialist import Specialist

log = logging.getLogger(__name__)

OPSET = 18
LOGIT_TOLERANCE = 1e-3
_MAX_PROTO_BYTES = 2**31 - 1
_PARITY_BATCH = 16


@dataclass(frozen=True)
class ParityReport:
    """PyTorch vs onnxruntime on the same preprocessed images."""

    num_images: int
    max_abs_diff: float
    argmax_agreement: float


@dataclass(frozen=True)
class ExportResult:
    """What was written: the file, its digest and the evidence that it matches PyTorch."""

    path: Path
    opset: int
    max_abs_diff: float
    argmax_agreement: float
    num_parity_images: int
    input_shape: list[int | str]
    output_shapes: dict[str, list[int | str]] = field(default_factory=dict)
    sha256: str = ""
    size_bytes: int = 0
    seconds: float = 0.0


def to_onnx(model: Specialist, *, opset: int = OPSET) -> ModelProto:
    """Export with the dynamo exporter: input ``image`` [batch,3,S,S], outputs logits, embedding.

    Constant folding replaces the exporter's optimizer (why: docs/benchmarks.md, "Performance
    notes behind code choices").
    """
    if opset < 17:
        raise ExportError(f"opset must be >= 17, got {opset}")
    size = model.image_size
    example = torch.zeros(2, 3, size, size, device=_device(model))
    batch = torch.export.Dim("batch", min=1, max=65536)
    was_training = model.training
    model.eval()
    try:
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            opset_version=opset,
            dynamic_shapes={"image": {0: batch}},
            external_data=False,
            optimize=False,
            verbose=False,
        )
    except (RuntimeError, ValueError, TypeError, NotImplementedError) as exc:
        raise ExportError(
            f"ONNX export of backbone {model.backbone!r} failed: {type(exc).__name__}",
            hint="try another image size or backbone",
        ) from exc
    finally:
        model.train(was_training)
    if program is None:
        raise ExportError(f"ONNX export of backbone {model.backbone!r} produced no program")
    onnxscript.optimizer.fold_constants(program.model)
    onnxscript.optimizer.remove_unused_nodes(program.model)
    return program.model_proto


def serialize_single_file(model: ModelProto) -> bytes:
    """Serialize ``model`` once, refusing external data files and protobuf's 2 GB limit.

    The length of the bytes is the size check: ``ByteSize()`` would serialize a second time.
    """
    external = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise ExportError(f"{len(external)} weight tensors are stored outside the model file")
    too_large = ExportError("the model is larger than 2 GB and cannot be a single ONNX file")
    try:
        data = model.SerializeToString()
    except (ValueError, EncodeError) as exc:
        raise too_large from exc
    if len(data) > _MAX_PROTO_BYTES:
        raise too_large
    return data


def check_parity(
    model: Specialist,
    onnx_model: bytes | Path,
    images: np.ndarray,
    *,
    tolerance: float = LOGIT_TOLERANCE,
) -> ParityReport:
    """Compare PyTorch and onnxruntime logits on preprocessed images ``float32 [N,3,S,S]``.

    Raises ExportError (with both numbers) when max |Δ logits| > ``tolerance`` or any argmax
    differs. Batches of different sizes (including one image alone) exercise the dynamic batch.
    """
    batch = _as_batch(images, model.image_size)
    source = str(onnx_model) if isinstance(onnx_model, Path) else onnx_model
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    torch_logits = _torch_logits(model, batch)
    chunks = [batch[:1], *(batch[i : i + _PARITY_BATCH] for i in range(1, len(batch), _PARITY_BATCH))]
    onnx_logits = np.concatenate([session.run([OUTPUT_NAMES[0]], {INPUT_NAME: c})[0] for c in chunks])
    max_diff = float(np.max(np.abs(onnx_logits - torch_logits)))
    agreement = float(np.mean(np.argmax(onnx_logits, 1) == np.argmax(torch_logits, 1)))
    report = ParityReport(num_images=len(batch), max_abs_diff=max_diff, argmax_agreement=agreement)
    if not max_diff <= tolerance or agreement < 1.0:
        raise ExportError(
            f"ONNX output differs from PyTorch on {len(batch)} validation images: "
            f"max |Δ logits| = {max_diff:.3g} (limit {tolerance:g}), "
            f"argmax agreement = {agreement:.2%} (must be 100%)",
            hint="the exported model is not trustworthy; report the backbone and image size",
        )
    return report


def export_specialist(
    model: Specialist,
    path: Path,
    images: np.ndarray,
    *,
    opset: int = OPSET,
    forbidden: Iterable[str] = (),
    deny_list: Iterable[str] = (),
    tolerance: float = LOGIT_TOLERANCE,
) -> ExportResult:
    """Export, anonymize, check, PHI-scan and parity-test ``model``; then write ``path``.

    ``images`` are real preprocessed validation images. ``forbidden`` (data root, file names,
    patient identifiers...) and ``deny_list`` are checked against every string of the model,
    together with this machine's host and user names; a hit raises PrivacyError naming fields.
    """
    start = time.perf_counter()
    proto = anonymize_in_place(to_onnx(model, opset=opset))
    data = serialize_single_file(proto)
    hits = scan_strings(onnx_strings(proto), [*forbidden, *system_identifiers()], deny_list=deny_list)
    if hits:
        raise PrivacyError(
            f"model.onnx would contain identifying strings in: {first_items(hits, 10)}",
            hint="nothing was written; remove the identifying names from the model or deny-list",
        )
    input_shape = _shape(proto.graph.input[0])
    output_shapes = {out.name: _shape(out) for out in proto.graph.output}
    del proto  # its copy of the weights; onnxruntime is about to load its own
    try:
        onnx.checker.check_model(data, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"the exported model is not valid ONNX: {exc}") from exc
    report = check_parity(model, data, images, tolerance=tolerance)
    _write_atomic(path, data)
    result = ExportResult(
        path=path,
        opset=opset,
        max_abs_diff=report.max_abs_diff,
        argmax_agreement=report.argmax_agreement,
        num_parity_images=report.num_images,
        input_shape=input_shape,
        output_shapes=output_shapes,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        seconds=time.perf_counter() - start,
    )
    log.info(
        "exported %s: %.1f MB, max |Δ logits| %.2g on %d images",
        model.backbone,
        result.size_bytes / 1e6,
        result.max_abs_diff,
        result.num_parity_images,
    )
    return result


def _device(model: Specialist) -> torch.device:
    return next(model.parameters()).device


def _as_batch(images: np.ndarray, size: int) -> np.ndarray:
    batch = np.ascontiguousarray(images, dtype=np.float32)
    if batch.ndim != 4 or batch.shape[1:] != (3, size, size) or len(batch) == 0:
        raise ExportError(
            f"parity images must be float32 [N,3,{size},{size}] with N >= 1, got {list(batch.shape)}",
            hint="preprocess validation images with the model's preprocessing",
        )
    return batch


def _torch_logits(model: Specialist, batch: np.ndarray) -> np.ndarray:
    was_training = model.training
    model.eval()
    outputs = []
    try:
        with torch.inference_mode():
            for i in range(0, len(batch), _PARITY_BATCH):
                chunk = torch.from_numpy(batch[i : i + _PARITY_BATCH]).to(_device(model))
                outputs.append(model(chunk)[0].float().cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(outputs)


def _shape(value: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".model-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ExportError(f"cannot write {path.name}: {exc.strerror}") from exc
