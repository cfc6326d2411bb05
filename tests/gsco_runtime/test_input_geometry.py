"""Input geometry: a non-square file gives the same model input at the site and at the hub.

The site reads files with ``site_agent.data.decode`` and prepares them with
``specialist.inputs``; the hub decodes uploads with ``hub.service.intake`` and prepares them in
``gsco_runtime.pool``. Both follow the card's ``preprocessing`` (``resize: pad`` for new runs).
The hub serves a real specialist (``tests/site_bundle.py``); the site side prepares images with
the preprocessing its training run recorded.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from gsco_common.errors import CardError
from gsco_runtime.pool.cache import BundleCache
from gsco_runtime.pool.pool import SpecialistPool
from gsco_runtime.pool.registry_source import RegistrySource
from gsco_runtime.pool.specialist import LoadedSpecialist
from hub.service.intake import decode
from registry.bundle.card import write_card
from registry.bundle.preprocess import preprocess
from site_agent.data.decode import decode_file
from site_agent.training.run_dir import load_run
from specialist.data import LabelledImages
from specialist.inputs import PreparedImages
from tests.gsco_runtime.world import World
from tests.site_bundle import SiteBundle, publish_real

LIMITS = {"max_bytes": 1 << 20, "max_pixels": 1 << 20}


def _served(world: World, specialist: SiteBundle, tmp_path: Path, **bundle: Any) -> LoadedSpecialist:
    task = world.new_task()
    publish_real(world, task, specialist, **bundle)
    pool = SpecialistPool(RegistrySource(world.config), BundleCache(tmp_path / "cache"))
    pool.watch([task])
    (specialist,) = pool.snapshot(task).specialists
    return specialist


def _non_square_png(path: Path) -> bytes:
    """A 48 x 20 photograph-like gradient: stretching it to a square would distort it."""
    rows = np.linspace(0, 255, 20, dtype=np.float32)[:, None]
    cols = np.linspace(0, 120, 48, dtype=np.float32)[None, :]
    Image.fromarray((rows * 0.5 + cols).astype(np.uint8), mode="L").save(path)
    return path.read_bytes()


def test_a_non_square_image_becomes_the_same_tensor_at_site_and_hub(
    world: World, real: tuple[SiteBundle, ...], tmp_path: Path
) -> None:
    specialist = _served(world, real[0], tmp_path)
    site = load_run(real[0].folder.parent).preprocessing  # what the site trained and exported with
    assert site.resize == "pad"  # new runs keep the aspect ratio
    assert specialist.info.preprocessing == site  # ... and the card tells the hub

    data = _non_square_png(tmp_path / "wide.png")
    site_image = decode_file(tmp_path / "wide.png").image
    split = LabelledImages(load_image=lambda _i: site_image, labels=np.zeros(1, np.int64))
    site_input = PreparedImages(split, site).batch(np.arange(1)).numpy()[0]
    hub_input = specialist.prepare(decode(data, **LIMITS).pixels)
    assert np.array_equal(site_input, hub_input)

    size = site.input_size
    black = (0.0 - np.asarray(site.mean, np.float32)) / np.asarray(site.std)
    # 48 x 20 padded to 48 x 48 puts 14 black rows above the image: scaled to 32 px, rows 0..8.
    np.testing.assert_allclose(hub_input[:, :8, :], np.broadcast_to(black[:, None, None], (3, 8, size)))
    stretched = preprocess(site_image, replace(site, resize="stretch"))
    assert not np.allclose(stretched, hub_input)


def _non_square_dicom(path: Path, photometric: str) -> bytes:
    """A 12-bit, windowed, rescaled 40 x 24 DICOM: decoding must use the header the same way."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = 24, 40
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = 2.0, -1000.0
    ds.WindowCenter, ds.WindowWidth = 1500.0, 3000.0
    ramp = np.add.outer(np.arange(24) * 60, np.arange(40) * 40).astype(np.uint16)
    ds.PixelData = ramp.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path.read_bytes()


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_a_non_square_dicom_becomes_the_same_tensor_at_site_and_hub(
    world: World, real: tuple[SiteBundle, ...], tmp_path: Path, photometric: str
) -> None:
    specialist = _served(world, real[0], tmp_path)
    data = _non_square_dicom(tmp_path / "cr.dcm", photometric)
    site_image = decode_file(tmp_path / "cr.dcm").image
    hub_image = decode(data, **LIMITS).pixels
    np.testing.assert_array_equal(hub_image, site_image)  # same window, rescale and inversion
    split = LabelledImages(load_image=lambda _i: site_image, labels=np.zeros(1, np.int64))
    site_input = PreparedImages(split, specialist.info.preprocessing).batch(np.arange(1)).numpy()[0]
    assert np.array_equal(site_input, specialist.prepare(hub_image))


def test_a_card_without_the_field_is_still_served_stretched(
    world: World, real: tuple[SiteBundle, ...], tmp_path: Path
) -> None:
    def old_card(card: dict[str, Any]) -> None:
        del card["preprocessing"]["resize"], card["preprocessing"]["pad_value"]

    specialist = _served(world, real[0], tmp_path, card_edit=old_card)  # the site re-signs it
    assert specialist.info.preprocessing.resize == "stretch"
    image = np.asarray(Image.open(io.BytesIO(_non_square_png(tmp_path / "w.png"))))
    spec = specialist.info.preprocessing
    assert np.array_equal(specialist.prepare(image), preprocess(image, replace(spec, resize="stretch")))
    assert not np.allclose(specialist.prepare(image), preprocess(image, replace(spec, resize="pad")))
    probs, _ = specialist.predict(image)
    assert probs.shape == (2,)


@pytest.mark.parametrize("resize", ["crop", 3])
def test_a_card_with_an_unknown_geometry_is_refused(
    real_specialists: tuple[SiteBundle, ...], tmp_path: Path, resize: object
) -> None:
    card = real_specialists[0].card
    card["preprocessing"]["resize"] = resize
    with pytest.raises(CardError, match=r"card\.preprocessing\.resize"):
        write_card(card, tmp_path)
    assert not (tmp_path / "card.json").exists()
