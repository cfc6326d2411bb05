"""ONNX export: one anonymized file, dynamic batch, parity with PyTorch on real validation images."""

from __future__ import annotations

import getpass
import hashlib
import socket
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from gsco_common.errors import ExportError, PrivacyError
from registry.bundle.phi import onnx_strings, scan_bytes
from registry.bundle.preprocess import preprocess_batch
from specialist.export.onnx_export import ExportResult, check_parity, export_specialist, to_onnx
from specialist.models import Specialist, create_specialist, list_backbones

REPO = Path(__file__).resolve().parents[3]
# Long, specific strings: safe to look for in the whole file, weights included.
LONG_IDENTIFIERS = [
    str(REPO),
    str(Path(sys.prefix)),
    "site-packages",
    "site_agent",
    "pkg.torch",
    "stack_trace",
]


@pytest.fixture(scope="module")
def raw_val_images(dev_npz: tuple[Path, str]) -> list[np.ndarray]:
    path, kind = dev_npz
    with np.load(path) as data:
        images = list(data["val_images"][:6])
    print(f"[data] parity images from {kind} validation split")
    return images


def _images(model: Specialist, raw: list[np.ndarray]) -> np.ndarray:
    return preprocess_batch(raw, model.preprocessing)


@pytest.fixture(scope="module")
def resnet_export(
    tmp_path_factory: pytest.TempPathFactory, raw_val_images: list[np.ndarray]
) -> tuple[Specialist, ExportResult, np.ndarray]:
    torch.manual_seed(0)
    model = create_specialist("resnet18", 2, 28, pretrained=False)
    images = _images(model, raw_val_images)
    result = export_specialist(model, tmp_path_factory.mktemp("bundle") / "model.onnx", images)
    return model, result, images


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def assert_anonymous(path: Path) -> None:
    data = path.read_bytes()
    assert not scan_bytes(data, LONG_IDENTIFIERS)
    model = onnx.load_from_string(data)
    fields = [field for field, _ in onnx_strings(model)]
    assert not [f for f in fields if "doc_string" in f or "metadata_props" in f]
    # Short identifiers could match random weight bytes: check the file without tensor payloads.
    for tensor in model.graph.initializer:
        tensor.ClearField("raw_data")
    assert not scan_bytes(
        model.SerializeToString(), [socket.gethostname(), getpass.getuser(), str(Path.home())]
    )


def assert_dynamic_batch(model: Specialist, path: Path, images: np.ndarray) -> None:
    session = _session(path)
    for count in (1, 3):
        logits, embedding = session.run(["logits", "embedding"], {"image": images[:count]})
        assert logits.shape == (count, model.num_classes)
        assert embedding.shape == (count, model.embedding_dim)


def test_export_writes_one_valid_file(resnet_export: tuple[Specialist, ExportResult, np.ndarray]) -> None:
    _, result, _ = resnet_export
    assert sorted(p.name for p in result.path.parent.iterdir()) == ["model.onnx"]
    model = onnx.load(str(result.path), load_external_data=False)
    onnx.checker.check_model(str(result.path), full_check=True)
    assert not [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert result.opset == 18 and {o.domain: o.version for o in model.opset_import}[""] >= 17
    assert result.input_shape == ["batch", 3, 28, 28]
    assert result.output_shapes == {"logits": ["batch", 2], "embedding": ["batch", 512]}
    assert result.sha256 == hashlib.sha256(result.path.read_bytes()).hexdigest()
    assert result.max_abs_diff <= 1e-3 and result.argmax_agreement == 1.0
    assert result.num_parity_images == 6


def test_exported_model_has_dynamic_batch_and_matches_torch(
    resnet_export: tuple[Specialist, ExportResult, np.ndarray],
) -> None:
    model, result, images = resnet_export
    assert_dynamic_batch(model, result.path, images)
    with torch.inference_mode():
        expected = model.eval()(torch.from_numpy(images[:3]))[1].numpy()
    embedding = _session(result.path).run(["embedding"], {"image": images[:3]})[0]
    assert np.max(np.abs(embedding - expected)) < 1e-4


def test_exported_file_carries_no_identifying_strings(
    resnet_export: tuple[Specialist, ExportResult, np.ndarray],
) -> None:
    _, result, _ = resnet_export
    assert_anonymous(result.path)
    model = onnx.load(str(result.path))
    assert (model.producer_name, model.graph.name) == ("gsco", "specialist")
    assert not [n for n in model.graph.node if n.name]


def test_parity_failure_shows_the_numbers(resnet_export: tuple[Specialist, ExportResult, np.ndarray]) -> None:
    _, result, images = resnet_export
    torch.manual_seed(123)
    different = create_specialist("resnet18", 2, 28, pretrained=False)
    with pytest.raises(ExportError, match=r"max \|Δ logits\| = [0-9.e+-]+ \(limit 0.001\), argmax agreement"):
        check_parity(different, result.path, images)


def test_parity_images_of_the_wrong_shape_are_refused(
    resnet_export: tuple[Specialist, ExportResult, np.ndarray],
) -> None:
    model, result, images = resnet_export
    with pytest.raises(ExportError, match=r"float32 \[N,3,28,28\]"):
        check_parity(model, result.path, images[:, :, :20, :20])


def test_identifying_string_aborts_export_before_writing(
    tmp_path: Path, resnet_export: tuple[Specialist, ExportResult, np.ndarray]
) -> None:
    model, _, images = resnet_export
    target = tmp_path / "model.onnx"
    with pytest.raises(PrivacyError) as info:
        export_specialist(model, target, images, deny_list=["EMBEDDING"])
    assert "model.graph.output[1].name" in str(info.value)
    assert "embedding" not in str(info.value).lower()
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("backbone", list_backbones())
def test_every_backbone_exports_with_parity(
    backbone: str, tmp_path: Path, raw_val_images: list[np.ndarray]
) -> None:
    torch.manual_seed(0)
    model = create_specialist(backbone, 3, 28, pretrained=False)
    images = _images(model, raw_val_images[:3])  # parity at batch 1 and 2, dynamic batch at 1 and 3
    start = time.perf_counter()
    result = export_specialist(model, tmp_path / "model.onnx", images)
    print(
        f"[export] {backbone} at {model.image_size}px: {time.perf_counter() - start:.1f}s, "
        f"{result.size_bytes / 1e6:.0f} MB, max |Δ logits| {result.max_abs_diff:.1e}"
    )
    assert result.max_abs_diff <= 1e-3 and result.argmax_agreement == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
    assert_dynamic_batch(model, result.path, images)
    assert_anonymous(result.path)


def test_opsets_below_17_are_refused(resnet_export: tuple[Specialist, ExportResult, np.ndarray]) -> None:
    model, _, _ = resnet_export
    with pytest.raises(ExportError, match="opset must be >= 17"):
        to_onnx(model, opset=16)
