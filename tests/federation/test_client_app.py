"""The site's ClientApp called in-process with real Flower messages on a real site folder."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from PIL import Image

from hub.federation.rounds import float_state
from hub.federation.transport import SiteView
from registry.bundle.provenance import source_digest
from site_agent.config import render_site_template
from site_agent.data.config import DataConfig
from site_agent.federation.client_app import app
from site_agent.federation.session import SITE_MIN_COUNT
from specialist.federation.wire import PACKED_ARRAY
from specialist.models.factory import create_specialist
from tests.federation.helpers import hub_message, site_slices

IMAGE_SIZE = 28


@pytest.fixture(scope="module")
def site_dir(dev_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    data = site_slices(dev_data, folder / "data", 2)[1]
    config = yaml.safe_load(
        render_site_template("site b", "pneumonia", ["normal", "pneumonia"], "chest X-ray")
    )
    config["data"] = {"path": str(data)}
    config["training"].update({"num_threads": 1, "batch_size": 32})
    (folder / "site.yaml").write_text(yaml.safe_dump(config))
    return folder


@pytest.fixture(scope="module")
def global_weights() -> ArrayRecord:
    torch.manual_seed(0)
    return ArrayRecord(float_state(create_specialist("resnet18", 2, IMAGE_SIZE, pretrained=False)))


def config(**extra: object) -> ConfigRecord:
    base = {"task": "pneumonia", "backbone": "resnet18", "image-size": IMAGE_SIZE, "min-count": 10, "seed": 0}
    return ConfigRecord({**base, **extra})


def train_config(**extra: object) -> ConfigRecord:
    return config(**{"local-epochs": 1, "lr": 0.01, "batch-size": 32, "server-round": 2, **extra})


def call(site_dir: Path, kind: str, config: ConfigRecord, arrays: ArrayRecord | None = None) -> Message:
    """The ClientApp's reply to a ``kind`` message carrying ``config`` (and ``arrays``, when given)."""
    content = RecordDict({"config": config} if arrays is None else {"arrays": arrays, "config": config})
    context = Context(
        run_id=1, node_id=7, node_config={"site-dir": str(site_dir)}, state=RecordDict(), run_config={}
    )
    return app(hub_message(kind, content), context)


def distance(reply: Message, weights: ArrayRecord) -> float:
    new = next(iter(reply.content.array_records.values()))
    return math.sqrt(
        sum(
            float(np.sum((a.numpy() - b.numpy()) ** 2))
            for a, b in zip(new.values(), weights.values(), strict=True)
        )
    )


def test_query_describes_the_site_with_suppressed_counts(site_dir: Path) -> None:
    reply = call(site_dir, MessageType.QUERY, config(**{"min-count": 10_000}))
    assert not reply.has_error()
    site = reply.content.config_records["site"]
    assert list(site["labels"]) == ["normal", "pneumonia"]
    counts = list(reply.content.metric_records["metrics"]["class-counts"])
    assert counts == [-1, -1], "counts below the threshold must never leave the site"
    data = Path(yaml.safe_load((site_dir / "site.yaml").read_text())["data"]["path"])
    # the digest a local card would record: the file's content digest, split "train", every image
    assert site["training-set-digest"] == source_digest(data, "train")
    assert site["training-set-digest"] == DataConfig(path=data).training_set_digest()


def test_another_task_is_refused_with_a_plain_reason(site_dir: Path) -> None:
    reply = call(site_dir, MessageType.QUERY, config(task="melanoma"))
    assert reply.has_error()
    assert "trains task 'pneumonia', not 'melanoma'" in reply.error.reason
    assert str(site_dir) not in reply.error.reason


@pytest.mark.slow
def test_train_returns_only_weights_and_aggregate_metrics(
    site_dir: Path, global_weights: ArrayRecord
) -> None:
    reply = call(site_dir, MessageType.TRAIN, train_config(**{"evaluate-incoming": True}), global_weights)
    assert not reply.has_error(), reply.error.reason if reply.has_error() else ""
    assert list(reply.content.array_records) == ["arrays"]
    assert list(reply.content.metric_records) == ["metrics"]
    assert not reply.content.config_records
    arrays = reply.content.array_records["arrays"]
    assert list(arrays.keys()) == list(global_weights.keys())
    metrics = reply.content.metric_records["metrics"]
    assert all(isinstance(value, int | float) for value in metrics.values())
    assert metrics["num-examples"] >= SITE_MIN_COUNT
    assert metrics["eval-examples"] >= SITE_MIN_COUNT and 0.0 <= metrics["eval-accuracy"] <= 1.0
    assert distance(reply, global_weights) > 0


@pytest.mark.slow
def test_fedprox_term_keeps_the_update_near_the_global_model(
    site_dir: Path, global_weights: ArrayRecord
) -> None:
    plain = call(site_dir, MessageType.TRAIN, train_config(), global_weights)
    proximal = call(site_dir, MessageType.TRAIN, train_config(**{"proximal-mu": 50.0}), global_weights)
    assert distance(proximal, global_weights) < 0.8 * distance(plain, global_weights)


@pytest.mark.slow
def test_dp_clipping_bounds_the_update_on_the_wire(site_dir: Path, global_weights: ArrayRecord) -> None:
    view = SiteView()
    packed, wire = view.outgoing(global_weights)
    config = train_config(**{"clipping_norm": 0.05, "update-encoding": "fp16-delta", **wire})
    reply = view.decode_update(call(site_dir, MessageType.TRAIN, config, packed))
    assert distance(reply, global_weights) <= 0.05 + 1e-5


@pytest.mark.slow
def test_final_evaluation_reports_rates_and_membership_inference(
    site_dir: Path, global_weights: ArrayRecord
) -> None:
    reply = call(site_dir, MessageType.EVALUATE, config(), global_weights)
    metrics = reply.content.metric_records["metrics"]
    assert metrics["eval-examples"] >= SITE_MIN_COUNT
    assert len(metrics["eval-sensitivity"]) == len(metrics["eval-support"]) == 2
    assert 0.0 <= metrics["eval-mia-auc"] <= 1.0
    suppressed = call(site_dir, MessageType.EVALUATE, config(**{"min-count": 10_000}), global_weights)
    assert suppressed.content.metric_records["metrics"]["eval-examples"] == 0
    assert math.isnan(suppressed.content.metric_records["metrics"]["eval-accuracy"])


@pytest.mark.slow
def test_half_precision_update_is_decoded_back_to_the_weights(
    site_dir: Path, global_weights: ArrayRecord
) -> None:
    plain = call(site_dir, MessageType.TRAIN, train_config(), global_weights)
    view = SiteView()
    packed, wire = view.outgoing(global_weights)
    half_precision = train_config(**{"update-encoding": "fp16-delta", **wire})
    compact = call(site_dir, MessageType.TRAIN, half_precision, packed)
    sent = compact.content.array_records["arrays"]
    assert list(sent.keys()) == [PACKED_ARRAY] and sent[PACKED_ARRAY].dtype == "float16"
    decoded = view.decode_update(compact).content.array_records["arrays"]
    assert "encoding" not in compact.content
    expected = plain.content.array_records["arrays"]
    assert list(decoded.keys()) == list(expected.keys())
    for key in expected.keys():
        np.testing.assert_allclose(decoded[key].numpy(), expected[key].numpy(), atol=2e-3)


LABELS = ("normal", "pneumonia")
PLANTED = "ZZSMITH^JOHN 1970-01-01"


def _image_folder_site(folder: Path, classes: dict[str, list[str]]) -> Path:
    """A site whose data is an image folder of 28 px PNGs: folder (`label` or `split/label`) -> file names."""
    rng = np.random.default_rng(0)
    for label, names in classes.items():
        (folder / "data" / label).mkdir(parents=True)
        for name in names:
            Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(
                folder / "data" / label / name
            )
    config = yaml.safe_load(
        render_site_template("site c", "pneumonia", ["normal", "pneumonia"], "chest X-ray")
    )
    config["data"] = {"path": str(folder / "data")}
    (folder / "site.yaml").write_text(yaml.safe_dump(config))
    return folder


def _images(prefix: str, count: int) -> list[str]:
    return [f"{prefix}_{index:02d}.png" for index in range(count)]


@pytest.mark.parametrize("kind", ["label", "file name"])
def test_an_error_from_the_sites_data_reaches_the_hub_without_what_it_names(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A label folder holding a patient's name, or a file named after one over the pixel limit:
    the site's error message quotes them, and only its code and kind may reach the hub."""
    if kind == "label":
        classes = {"normal": _images("a", 12), "pneumonia": _images("b", 12), PLANTED: _images("c", 2)}
        code, message = "GSCO-200", "Site data cannot be used"
    else:
        monkeypatch.setenv("GSCO_MAX_IMAGE_PIXELS", "100")  # every 28 x 28 image is over it
        classes = {"normal": [f"{PLANTED}.png", *_images("a", 11)], "pneumonia": _images("b", 12)}
        code, message = "GSCO-210", "An input file is beyond a safety limit"
    site = _image_folder_site(tmp_path / kind.replace(" ", "-"), classes)
    with caplog.at_level(logging.WARNING, logger="site_agent.federation.replies"):
        reply = call(site, MessageType.QUERY, config())
    assert reply.has_error()
    assert reply.error.reason.startswith(f"[{code}] {message}")
    assert reply.error.reason.endswith("(the site's log says which)")
    assert "ZZSMITH" not in reply.error.reason and str(site) not in reply.error.reason
    assert "ZZSMITH" in caplog.text  # the site's own log keeps the whole message


def test_no_number_of_examples_gives_a_suppressed_class_count_back(
    tmp_path: Path, global_weights: ArrayRecord
) -> None:
    """6 normal and 24 pneumonia training images: ``train-examples`` 30 next to the pneumonia 24
    gave the suppressed 6 back; the sum of the classes shown says nothing more than they do."""
    held_out = {
        split + "/" + label: _images(split + label, 12) for split in ("val", "test") for label in LABELS
    }
    small = _image_folder_site(
        tmp_path / "small", {"train/normal": _images("a", 6), "train/pneumonia": _images("b", 24), **held_out}
    )
    described = call(small, MessageType.QUERY, config()).content.metric_records["metrics"]
    assert (list(described["class-counts"]), described["train-examples"]) == ([-1, 24], 24)
    higher = call(small, MessageType.QUERY, config(**{"min-count": 25})).content.metric_records["metrics"]
    assert (list(higher["class-counts"]), higher["train-examples"]) == ([-1, -1], 0)  # the hub's threshold
    refused = call(small, MessageType.TRAIN, train_config(**{"min-count": 25}), global_weights)
    assert (
        refused.has_error() and "every class of this site's training split is below" in refused.error.reason
    )
    exact = _image_folder_site(
        tmp_path / "exact",
        {"train/normal": _images("a", 12), "train/pneumonia": _images("b", 24), **held_out},
    )
    described = call(exact, MessageType.QUERY, config()).content.metric_records["metrics"]
    assert (list(described["class-counts"]), described["train-examples"]) == ([12, 24], 36)
