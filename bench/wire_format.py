"""The federation's wire format: what packing and torch's float16 conversions save, side by side.

One real round's change of a resnet18 specialist (a few AdamW steps on random images from the
federation's initial model) is encoded as the hub and the sites encode it
(``specialist/federation/wire.py``) and compared with the straightforward alternatives, run
interleaved in one process so that machine load affects both alike:

* float16 conversion, both directions: numpy (``astype``) vs torch (``half_difference``,
  ``add_half``); the results must be bit-identical;
* objects per message (one HTTP request per object and hop in Flower): one array per tensor vs
  one packed array, counted with Flower's own object tree, and the bytes.

    .venv/bin/python bench/wire_format.py                 # prints the table
    .venv/bin/python bench/wire_format.py --write-docs    # also updates docs/benchmarks.md
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from flwr.app import Array, ArrayRecord

from specialist.federation.flower import get_all_nested_objects

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import bench_parser  # noqa: E402
from bench.docs_section import publish  # noqa: E402
from hub.federation.rounds import float_state  # noqa: E402
from specialist.federation.wire import Layout, add_half, half_difference, packed_record  # noqa: E402
from specialist.models.factory import create_specialist  # noqa: E402

SECTION = "## Federation wire format"


def one_round_change(
    backbone: str, image_size: int, steps: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Weights before and after ``steps`` AdamW steps (lr 1e-3, batch 32) on random images."""
    torch.manual_seed(0)
    model = create_specialist(backbone, 2, image_size)
    before = {key: value.detach().clone().numpy() for key, value in float_state(model).items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(steps):
        images = torch.randn(32, 3, image_size, image_size)
        logits, _ = model(images)
        loss = torch.nn.functional.cross_entropy(logits, torch.randint(0, 2, (32,)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = {key: value.detach().clone().numpy() for key, value in float_state(model).items()}
    return before, after


def interleaved(candidates: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each candidate, run in turn ``repeats`` times."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, run in candidates.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def record_objects(record: ArrayRecord) -> tuple[int, int]:
    """Objects Flower transfers for the weights record of a message, and their bytes."""
    objects = get_all_nested_objects(record)
    return len(objects), sum(len(obj.deflate()) for obj in objects.values())


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--steps", type=int, default=20, help="AdamW steps making the round's change")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    before, after = one_round_change(args.backbone, args.image_size, args.steps)
    layout = Layout.of(after)
    base, new = layout.pack(before), layout.pack(after)
    delta = half_difference(new, base)
    if not np.array_equal(delta, (new - base).astype(np.float16)) or not np.array_equal(
        add_half(base, delta), base + delta.astype(np.float32)
    ):
        raise SystemExit("torch and numpy float16 arithmetic differ: the wire format would be wrong")
    subnormal = float(np.mean((delta != 0) & (np.abs(delta.astype(np.float32)) < 2.0**-14)))
    encode = interleaved(
        {"numpy": lambda: (new - base).astype(np.float16), "torch": lambda: half_difference(new, base)},
        args.repeats,
    )
    decode = interleaved(
        {"numpy": lambda: base + delta.astype(np.float32), "torch": lambda: add_half(base, delta)},
        args.repeats,
    )
    per_tensor = ArrayRecord({name: Array(value) for name, value in layout.unpack(delta).items()})
    tensor_objects, tensor_bytes = record_objects(per_tensor)
    packed_objects, packed_bytes = record_objects(packed_record(delta))

    lines = [
        SECTION,
        "",
        f"`bench/wire_format.py` ({platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} "
        f"torch threads, numpy {np.__version__}, torch {torch.__version__}): one round's change of "
        f"{args.backbone} at {args.image_size} px ({args.steps} AdamW steps, {layout.size:,} values in "
        f"{len(layout.entries)} tensors; {subnormal:.0%} of the float16 differences are subnormal), "
        f"median of {args.repeats} interleaved repetitions; 5-minute load average "
        f"{os.getloadavg()[1]:.1f}. Results of both are bit-identical (checked).",
        "",
        "| float16 step | numpy | torch (used) | numpy / torch |",
        "|---|---:|---:|---:|",
        f"| encode `float16(new - base)` | {encode['numpy'] * 1e3:.0f} ms | {encode['torch'] * 1e3:.1f} ms "
        f"| {encode['numpy'] / encode['torch']:.0f}x |",
        f"| decode `base + float32(delta)` | {decode['numpy'] * 1e3:.0f} ms | {decode['torch'] * 1e3:.1f} ms "
        f"| {decode['numpy'] / decode['torch']:.0f}x |",
        "",
        "| weights of one float16 update | Flower objects (HTTP requests per hop) | bytes |",
        "|---|---:|---:|",
        f"| one array per tensor | {tensor_objects} | {tensor_bytes / 1e6:.1f} MB |",
        f"| packed (used) | {packed_objects} | {packed_bytes / 1e6:.1f} MB |",
        "",
        "Each message crosses three hops each way (ServerApp, SuperLink, SuperNode, task gate); the "
        "per-round effect of both changes is in [results](results.md#federated-training).",
        "",
    ]
    publish(lines, "benchmarks.md", "Benchmarks", write=args.write_docs)


if __name__ == "__main__":
    main()
