"""Pick the demo dataset and say which one it is (used by deploy/demo/run.sh).

Order: ``DATA`` given by the user; the real PneumoniaMNIST dev file in ../shared/data; the real
MedMNIST file fetched with the ``medmnist`` package when the internet is reachable; a small
synthetic dataset generated here and plainly labelled synthetic. Prints ``PATH<TAB>DESCRIPTION``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "pneumoniamnist_dev.npz"


def fetch_medmnist(dest: Path) -> Path | None:
    """Download PneumoniaMNIST with the medmnist package; None when it cannot."""
    try:
        import medmnist
    except ImportError:
        return None
    try:
        medmnist.PneumoniaMNIST(split="train", download=True, root=str(dest), size=28)
    except (OSError, RuntimeError, ValueError) as exc:  # no internet: urllib / requests errors
        print(f"medmnist download unavailable ({type(exc).__name__})", file=sys.stderr)
        return None
    found = sorted(dest.glob("pneumoniamnist*.npz"))
    return found[0] if found else None


def main(user_data: str, work: Path) -> None:
    if user_data:
        print(f"{Path(user_data).resolve()}\tuser-supplied data ({user_data})")
        return
    if SHARED.is_file():
        print(f"{SHARED}\treal PneumoniaMNIST dev data from ../shared/data")
        return
    work.mkdir(parents=True, exist_ok=True)
    fetched = fetch_medmnist(work)
    if fetched is not None:
        print(f"{fetched}\treal PneumoniaMNIST fetched with the medmnist package")
        return
    from site_agent.data.synthetic import write_synthetic_npz

    path = work / "synthetic_demo.npz"
    write_synthetic_npz(path, n_per_class=300, size=28, seed=0)
    print(f"{path}\tSYNTHETIC data generated locally (no real data found): results mean nothing clinically")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "", Path(sys.argv[2] if len(sys.argv) > 2 else ".demo/data"))
