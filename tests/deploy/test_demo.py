"""`make demo`: the choice of demo data (deploy/demo/resolve_data.py) and the whole demo script."""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from site_agent.data.config import DataConfig
from site_agent.data.loader import load_site_data
from site_agent.data.synthetic import write_synthetic_npz

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "deploy" / "demo"
RESOLVE = DEMO / "resolve_data.py"
LABELS = ("normal", "pneumonia")


def _load_script(path: Path):
    spec = importlib.util.spec_from_file_location(f"demo_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


resolve_data = _load_script(RESOLVE)
held_out = _load_script(DEMO / "held_out.py")


class RecordingFetch:
    """A stand-in for the medmnist download: writes ``result_npz`` into the folder (or fails)."""

    def __init__(self, succeed: bool) -> None:
        self.succeed = succeed
        self.calls: list[Path] = []

    def __call__(self, dest: Path) -> Path | None:
        self.calls.append(dest)
        if not self.succeed:
            return None
        return write_synthetic_npz(dest / "pneumoniamnist.npz", n_per_class=4, val_per_class=2)


def _run_resolve_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RESOLVE), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_user_data_comes_first(tmp_path: Path) -> None:
    data = write_synthetic_npz(tmp_path / "mine.npz", n_per_class=4)
    shared = write_synthetic_npz(tmp_path / "shared.npz", n_per_class=4)
    fetch = RecordingFetch(succeed=True)
    path, description = resolve_data.resolve(str(data), tmp_path / "work", shared=shared, fetch=fetch)
    assert path == data.resolve()
    assert description == f"user-supplied data ({data})"
    assert fetch.calls == []


def test_missing_user_data_is_a_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.npz"
    result = _run_resolve_script(str(missing), str(tmp_path / "work"))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"error: DATA={missing}: no such file\n"
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (None, "not a readable .npz file"),
        ({"train_images": np.zeros((2, 4, 4), np.uint8)}, "needs a MedMNIST-style .npz"),
        ({"val_images": np.zeros((2, 4, 4), np.uint8)}, "needs a MedMNIST-style .npz"),
    ],
    ids=["not-npz", "no-held-out-split", "no-train-split"],
)
def test_user_data_the_demo_cannot_use_is_refused(
    tmp_path: Path, arrays: dict[str, np.ndarray] | None, message: str
) -> None:
    data = tmp_path / "bad.npz"
    if arrays is None:
        data.write_text("not an archive")
    else:
        np.savez(data, **arrays)
    with pytest.raises(resolve_data.DemoDataError, match=message):
        resolve_data.resolve(str(data), tmp_path / "work", shared=tmp_path / "absent.npz")


def test_shared_dev_file_comes_before_the_download(tmp_path: Path) -> None:
    shared = write_synthetic_npz(tmp_path / "shared" / "pneumoniamnist_dev.npz", n_per_class=4)
    fetch = RecordingFetch(succeed=True)
    path, description = resolve_data.resolve("", tmp_path / "work", shared=shared, fetch=fetch)
    assert path == shared
    assert description == "real PneumoniaMNIST dev data from ../shared/data"
    assert fetch.calls == []


def _resolve_without_shared_file(tmp_path: Path, download_works: bool) -> tuple[Path, str]:
    work = tmp_path / "work"
    fetch = RecordingFetch(succeed=download_works)
    resolved = resolve_data.resolve("", work, shared=tmp_path / "absent.npz", fetch=fetch)
    assert fetch.calls == [work]
    return resolved


def test_download_comes_before_synthetic_data(tmp_path: Path) -> None:
    path, description = _resolve_without_shared_file(tmp_path, download_works=True)
    assert path == tmp_path / "work" / "pneumoniamnist.npz"
    assert description == "real PneumoniaMNIST fetched with the medmnist package"
    assert not (tmp_path / "work" / "synthetic_demo.npz").exists()


def test_synthetic_data_last_plainly_labelled(tmp_path: Path) -> None:
    path, description = _resolve_without_shared_file(tmp_path, download_works=False)
    assert path == tmp_path / "work" / "synthetic_demo.npz"
    assert "SYNTHETIC" in description
    with np.load(path) as archive:
        assert "synthetic" in str(archive["about"])
    data = load_site_data(DataConfig(path=path), LABELS, seed=0)
    for split in ("train", "val", "test"):
        assert set(data.split(split).labels.tolist()) == {0, 1}


def _split(split: str, first: int, count: int) -> dict[str, np.ndarray]:
    images = np.arange(first, first + count, dtype=np.uint8)[:, None, None] * np.ones((1, 4, 4), np.uint8)
    return {f"{split}_images": images, f"{split}_labels": (np.arange(count) % 2).reshape(-1, 1)}


@pytest.mark.parametrize("split", ["val", "test"])
def test_the_image_diagnosed_is_left_out_of_the_library_of_its_split(split: str) -> None:
    data = _split(split, 10, 5)
    image_split, library = held_out.split_held_out(data, split)
    assert image_split == split
    assert library[f"{split}_images"][:, 0, 0].tolist() == [11, 12, 13, 14]  # all but the first
    assert library[f"{split}_labels"].ravel().tolist() == [1, 0, 1, 0]


def test_with_a_test_split_the_image_comes_from_it_and_the_library_keeps_all_of_val() -> None:
    data = {**_split("val", 10, 5), **_split("test", 50, 3)}
    image_split, library = held_out.split_held_out(data, "val")
    assert image_split == "test"
    assert sorted(library) == ["val_images", "val_labels"]
    assert library["val_images"][:, 0, 0].tolist() == [10, 11, 12, 13, 14]


def test_held_out_script_writes_the_library_and_the_image(tmp_path: Path) -> None:
    data = tmp_path / "data.npz"
    np.savez(data, train_images=np.zeros((2, 4, 4), np.uint8), **_split("val", 10, 5))
    library, image = tmp_path / "library.npz", tmp_path / "sample.png"
    result = subprocess.run(
        [
            sys.executable,
            str(DEMO / "held_out.py"),
            str(data),
            "val",
            str(library),
            str(image),
            "normal,pneumonia",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        "held-out image val_images[0], true label: normal\n",
        "",
    )
    with np.load(library) as written:
        assert sorted(written.files) == ["val_images", "val_labels"]  # nothing of train
        assert written["val_images"][:, 0, 0].tolist() == [11, 12, 13, 14]
    assert np.asarray(Image.open(image)).tolist() == [[10] * 4] * 4


@pytest.fixture
def silent_proxy():
    """A loopback port that accepts connections and never answers (a network that hangs)."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as server:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


@pytest.fixture
def refusing_proxy() -> str:
    """A loopback port nobody listens on (an offline machine: the connection is refused)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("proxy_kind", ["refusing_proxy", "silent_proxy"])
def test_real_medmnist_download_fails_fast_and_cleanly(
    tmp_path: Path, proxy_kind: str, request: pytest.FixtureRequest
) -> None:
    """The real medmnist package, its download routed to loopback: no internet is ever used."""
    proxy = request.getfixturevalue(proxy_kind)
    env = {key: value for key, value in os.environ.items() if key.lower() not in ("no_proxy", "all_proxy")}
    env.update({name: proxy for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")})
    code = (
        "import importlib.util, sys; from pathlib import Path; "
        f"spec = importlib.util.spec_from_file_location('r', {str(RESOLVE)!r}); "
        "r = importlib.util.module_from_spec(spec); spec.loader.exec_module(r); "
        f"print(r.fetch_medmnist(Path({str(tmp_path)!r}), timeout_s=2.0))"
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=180, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "None\n"
    assert "medmnist download unavailable (URLError)" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 120
    assert not (tmp_path / "pneumoniamnist.npz").exists()


def _run_demo(env_extra: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "SERVE": "0", **env_extra}
    return subprocess.run(
        ["bash", str(DEMO / "run.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )


def test_demo_never_deletes_a_folder_it_did_not_make(tmp_path: Path) -> None:
    home = tmp_path / "precious"
    home.mkdir()
    (home / "thesis.txt").write_text("keep me")
    result = _run_demo({"DEMO_HOME": str(home), "DATA": ""}, timeout=60)
    assert result.returncode == 2
    assert "is not empty and was not made by the demo" in result.stderr
    assert sorted(p.name for p in home.iterdir()) == ["thesis.txt"]


def test_demo_with_bad_data_stops_before_deleting_the_last_demo(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    (home / "site").mkdir(parents=True)
    (home / ".gsco-demo").touch()
    (home / "site" / "site.yaml").write_text("from the last demo")
    missing = tmp_path / "missing.npz"
    result = _run_demo({"DEMO_HOME": str(home), "DATA": str(missing)}, timeout=120)
    assert result.returncode == 2
    assert f"error: DATA={missing}: no such file" in result.stderr
    assert "Traceback" not in result.stderr
    assert (home / "site" / "site.yaml").read_text() == "from the last demo"


@pytest.mark.slow
def test_demo_runs_end_to_end_on_given_data(tmp_path: Path) -> None:
    """site -> registry -> approval -> hub on small synthetic data, touching nothing outside DEMO_HOME."""
    data = write_synthetic_npz(tmp_path / "small.npz", n_per_class=100, size=28, seed=0)
    demo_home, user_home = tmp_path / "demo", tmp_path / "home"
    user_home.mkdir()
    result = _run_demo(
        {
            "DATA": str(data),
            "DEMO_HOME": str(demo_home),
            "GSCO_KEY_PASSPHRASE": "smoke-test-passphrase",
            "HOME": str(user_home),
        },
        timeout=600,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert f"== Demo data: user-supplied data ({data})" in out
    evaluation = out[out.index("== Site: evaluate on the held-out split") :]
    assert re.search(r"balanced_accuracy\s*│\s*\d\.\d{4}", evaluation)
    assert "confusion matrix" in evaluation
    review = out[out.index("== Central team: verify and approve pneumonia.resnet18.demo-hospital v1") :]
    assert review.index("NOT approved") < review.index("(not approved yet: expected before review)")
    assert "pass    metric_floor" in review
    assert "pneumonia.resnet18.demo-hospital version 1: APPROVED (alias `approved` set)" in review
    diagnosis = out[out.index("== Hub: import the reference case library") :]
    with np.load(data) as archive:
        first = LABELS[int(archive["val_labels"][0, 0])]
    counts = {label: 20 - (label == first) for label in LABELS}  # the image diagnosed is left out
    assert f"held-out image val_images[0], true label: {first}\n" in diagnosis
    assert f"imported 39 cases for task pneumonia: {counts}" in diagnosis
    assert "[AI generated, not for clinical use]" in diagnosis
    assert re.search(r"task pneumonia: (normal|pneumonia) \(confidence \d\.\d+\)", diagnosis)
    assert "arbiter: consensus (no generalist)" in diagnosis
    assert "pneumonia.resnet18.demo-hospital v1 (resnet18" in diagnosis
    assert (demo_home / "registry" / "registry.db").is_file()
    assert list(user_home.iterdir()) == []
