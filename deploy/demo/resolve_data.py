"""Pick the demo dataset and say which one it is (used by deploy/demo/run.sh).

Order: ``DATA`` given by the user; the real PneumoniaMNIST dev file in ../shared/data; the real
MedMNIST file fetched with the ``medmnist`` package when the internet is reachable; a small
synthetic dataset generated here and plainly labelled synthetic. Prints ``PATH<TAB>DESCRIPTION``;
a user-supplied ``DATA`` that the demo cannot use is a one-line error (exit code 2).
"""

from __future__ import annotations

import socket
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "pneumoniamnist_dev.npz"
# Per socket operation, not in total: an unreachable or silent host fails fast instead of
# hanging for minutes, while a slow but working download still completes.
FETCH_TIMEOUT_S = 15.0


class DemoDataError(Exception):
    """The user's ``DATA`` cannot drive the demo; the message is shown as one line."""


def fetch_medmnist(dest: Path, timeout_s: float = FETCH_TIMEOUT_S) -> Path | None:
    """Download PneumoniaMNIST (28 px) into ``dest`` with the medmnist package; None when it cannot."""
    try:
        from medmnist import PneumoniaMNIST
    except ImportError:
        return None
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)
    try:
        PneumoniaMNIST(split="train", download=True, root=str(dest), size=28)
    except RuntimeError as exc:  # medmnist wraps every download failure (URLError, timeout, MD5)
        cause = exc.__context__ or exc
        print(f"medmnist download unavailable ({type(cause).__name__})", file=sys.stderr)
        return None
    finally:
        socket.setdefaulttimeout(previous)
    return dest / "pneumoniamnist.npz"


def check_user_npz(path: Path, given: str) -> None:
    """The demo trains on ``train_*`` and diagnoses a held-out ``val_``/``test_`` image: require both."""
    if not path.is_file():
        raise DemoDataError(f"DATA={given}: no such file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = set(archive.files)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        raise DemoDataError(f"DATA={given}: not a readable .npz file") from None
    if "train_images" not in keys or not keys & {"val_images", "test_images"}:
        raise DemoDataError(
            f"DATA={given}: the demo needs a MedMNIST-style .npz (train_ and val_ or test_ arrays)"
        )


def resolve(
    user_data: str,
    work: Path,
    shared: Path = SHARED,
    fetch: Callable[[Path], Path | None] = fetch_medmnist,
) -> tuple[Path, str]:
    """The demo's dataset and a one-line description of it, in the order of the module docstring."""
    if user_data:
        path = Path(user_data).expanduser().resolve()
        check_user_npz(path, user_data)
        return path, f"user-supplied data ({user_data})"
    if shared.is_file():
        return shared, "real PneumoniaMNIST dev data from ../shared/data"
    work.mkdir(parents=True, exist_ok=True)
    fetched = fetch(work)
    if fetched is not None:
        return fetched, "real PneumoniaMNIST fetched with the medmnist package"
    from site_agent.data.synthetic import write_synthetic_npz

    path = write_synthetic_npz(work / "synthetic_demo.npz", n_per_class=300, size=28, seed=0)
    return path, "SYNTHETIC data generated locally (no real data found): results mean nothing clinically"


def main(argv: list[str]) -> int:
    """``resolve_data.py [DATA [WORK_DIR]]``: print ``PATH<TAB>DESCRIPTION``."""
    try:
        path, description = resolve(argv[0] if argv else "", Path(argv[1] if len(argv) > 1 else ".demo/data"))
    except DemoDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{path}\t{description}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
