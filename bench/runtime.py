"""GSCo runtime benchmarks, each a ratio measured side by side in one run.

1. onnxruntime vs PyTorch eager, per backbone (batch 1, same thread budget).
2. The full query path (3 specialists + RAD + consensus through ``GscoRuntime.diagnose``) vs the
   sum of the bare onnxruntime runs of the same three sessions (target: overhead <= 15 %).
3. Micro-batched throughput at concurrency 8 vs 1.
4. RAD top-10 over 100k and 1M stored 512-d embeddings: FAISS HNSW vs exact, median latency of
   single queries and recall@10 (target: >= 0.95 at <= 2 ms median for 100k).

Specialists are randomly initialised (latency does not depend on the weights), exported, signed,
published and approved in a throw-away embedded registry, then loaded by the real runtime.

    .venv/bin/python bench/runtime.py                      # prints the tables
    .venv/bin/python bench/runtime.py --write-docs         # also updates docs/benchmarks.md
    .venv/bin/python bench/runtime.py --skip rad --write-docs   # re-measure the rest only

OpenMP threads (PyTorch, FAISS) sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``), as
onnxruntime's do in the runtime: on a shared host, spinning threads collapse under load.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch / faiss start their OpenMP runtime
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import bench_environment, bench_parser  # noqa: E402
from bench.docs_section import DOCS, replace_section, running_script  # noqa: E402
from bench.world import LABELS, exported, make_world, sample_images  # noqa: E402
from gsco_runtime.cases.library import build_library, save_library  # noqa: E402
from gsco_runtime.cases.readers import RawCases  # noqa: E402
from gsco_runtime.config import RuntimeSettings  # noqa: E402
from gsco_runtime.engine import GscoRuntime  # noqa: E402
from gsco_runtime.pool.registry_source import RegistrySource  # noqa: E402
from gsco_runtime.pool.threads import ThreadBudget  # noqa: E402
from gsco_runtime.rad.index import IndexSettings, VectorIndex  # noqa: E402

SECTION = "## Runtime (gsco_runtime)"


def paired_median_ms(fns: list[Callable[[], object]], reps: int, warmup: int = 3) -> list[float]:
    """Median ms of each function, called in turn within every repetition.

    Interleaving puts every candidate under the same machine load (this host is shared), so the
    ratios stay meaningful even when absolute times drift.
    """
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(reps):
        for index, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            times[index].append((time.perf_counter() - start) * 1000)
    return [statistics.median(t) for t in times]


def ort_vs_torch(backbones: list[str], size: int, reps: int, budget: ThreadBudget) -> list[str]:
    torch.set_num_threads(budget.threads)
    rows = ["| backbone | input | PyTorch eager ms | onnxruntime ms | speed-up |", "|---|---|---:|---:|---:|"]
    for backbone in backbones:
        data, model = exported(backbone, 0, 2, size)
        session = ort.InferenceSession(data, budget.session_options(), providers=["CPUExecutionProvider"])
        x = (
            np.random.default_rng(0)
            .standard_normal((1, 3, model.image_size, model.image_size))
            .astype(np.float32)
        )
        tensor = torch.from_numpy(x)

        def eager(m: torch.nn.Module = model, t: torch.Tensor = tensor) -> None:
            with torch.inference_mode():
                m(t)

        torch_ms, ort_ms = paired_median_ms([eager, lambda s=session, b=x: s.run(None, {"image": b})], reps)
        speed_up = torch_ms / ort_ms
        rows.append(
            f"| {backbone} | {model.image_size} px | {torch_ms:.2f} | {ort_ms:.2f} | {speed_up:.2f}x |"
        )
    return rows


def query_path(runtime: GscoRuntime, task: str, reps: int) -> tuple[list[str], float]:
    image = sample_images(1, seed=42)[0]
    specialists = runtime.pool.snapshot(task).specialists
    bare_runs = [lambda s=s, b=s.prepare(image)[None]: s.run(b) for s in specialists]
    *bare, full = paired_median_ms([*bare_runs, lambda: runtime.diagnose(image, task)], reps)
    overhead = full / sum(bare) - 1
    names = ", ".join(f"{s.info.backbone} {ms:.2f}" for s, ms in zip(specialists, bare, strict=True))
    rows = [
        "| measurement | median ms |",
        "|---|---:|",
        f"| bare onnxruntime runs ({names}) | sum {sum(bare):.2f} |",
        f"| full query: preprocessing + MoED + RAD (k=10) + consensus | {full:.2f} |",
        f"| overhead of the full path | **{100 * overhead:.1f} %** (target <= 15 %) |",
    ]
    return rows, overhead


def throughput(runtime: GscoRuntime, task: str, requests: int) -> list[str]:
    images = sample_images(16, seed=7)

    def run(concurrency: int) -> tuple[float, float]:
        specialists = runtime.pool.snapshot(task).specialists
        before = [(s.batcher.batches_run, s.batcher.items_run) for s in specialists]
        per_thread = requests // concurrency

        def worker(offset: int) -> None:
            for i in range(per_thread):
                runtime.diagnose(images[(offset + i) % len(images)], task)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        batches = sum(s.batcher.batches_run - b for s, (b, _) in zip(specialists, before, strict=True))
        items = sum(s.batcher.items_run - i for s, (_, i) in zip(specialists, before, strict=True))
        return per_thread * concurrency / elapsed, items / max(1, batches)

    run(2)  # warm-up
    one, batch_one = run(1)
    eight, batch_eight = run(8)
    return [
        "| concurrency | requests/s | mean micro-batch |",
        "|---:|---:|---:|",
        f"| 1 | {one:.1f} | {batch_one:.2f} |",
        f"| 8 | {eight:.1f} | {batch_eight:.2f} |",
        f"| ratio 8 vs 1 | **{eight / one:.2f}x** | |",
    ]


def clustered(n: int, dim: int, seed: int, centres: np.ndarray) -> np.ndarray:
    """``n`` points around random centres, generated in float32 chunks (1M x 512 = 2 GB, no more)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        noise = rng.standard_normal((stop - start, dim), dtype=np.float32)
        out[start:stop] = centres[rng.integers(0, len(centres), stop - start)] + 0.6 * noise
    return out


def query_median_ms(index: VectorIndex, probe: np.ndarray) -> float:
    """Median latency of single top-10 queries (each timed on its own)."""
    index.search(probe[0], 10)
    times = []
    for q in probe:
        start = time.perf_counter()
        index.search(q, 10)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def rad_rows(n: int, dim: int, queries: int, centres: np.ndarray, ef_searches: list[int]) -> list[str]:
    """One HNSW build per size, queried at each efSearch; exact FAISS search as the reference."""
    stored = clustered(n, dim, 1, centres)
    probe = clustered(queries, dim, 2, centres)
    exact = VectorIndex.build(stored, IndexSettings(exact_threshold=n + 1))
    start = time.perf_counter()
    hnsw = VectorIndex.build(stored, IndexSettings(exact_threshold=0))
    build_s = time.perf_counter() - start
    del stored
    truth = [exact.search(q, 10)[1][0] for q in probe]
    exact_ms = query_median_ms(exact, probe[:50])
    rows = []
    for ef in ef_searches:
        hnsw.set_ef_search(ef)
        found = [hnsw.search(q, 10)[1][0] for q in probe]
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)]))
        hnsw_ms = query_median_ms(hnsw, probe)
        rows.append(f"| {n:,} | {exact_ms:.2f} | {ef} | {hnsw_ms:.3f} | {recall:.3f} | {build_s:.0f} |")
    return rows


def rad(sizes: list[int], dim: int, queries: int) -> list[str]:
    s = IndexSettings()
    centres = np.random.default_rng(0).standard_normal((1000, dim)).astype(np.float32)
    ef_searches = [s.ef_search, 2 * s.ef_search]
    return [
        f"HNSW M={s.hnsw_m}, efConstruction={s.ef_construction} (runtime default efSearch {s.ef_search}); "
        f"{dim}-d clustered vectors (1000 clusters); {queries} single queries from held-out points, "
        "each timed alone (exact: 50 queries).",
        "",
        "| stored | exact median ms | HNSW efSearch | HNSW median ms | HNSW recall@10 | HNSW build s |",
        "|---:|---:|---:|---:|---:|---:|",
        *(row for n in sizes for row in rad_rows(n, dim, queries, centres, ef_searches)),
    ]


def _subsections(body: str) -> dict[str, str]:
    parts = body.split("\n### ")
    return {part.split("\n", 1)[0]: part.split("\n", 1)[1] for part in parts[1:]}


def write_docs(header: str, sections: dict[str, list[str]]) -> Path:
    """Replace this run's subsections of the runtime section of docs/benchmarks.md, keep the others."""
    path = DOCS / "benchmarks.md"
    current = path.read_text() if path.is_file() else ""
    start = current.find(SECTION)
    end = current.find("\n## ", start + len(SECTION)) if start >= 0 else -1
    kept = _subsections(current[start : end if end >= 0 else None]) if start >= 0 else {}
    kept.update({title: "\n" + "\n".join(rows) + "\n" for title, rows in sections.items()})
    blocks = "".join(f"\n### {title}\n\n{body.strip()}\n" for title, body in kept.items())
    return replace_section(path, SECTION, f"{SECTION}\n\n{header}\n{blocks}", "Benchmarks", running_script())


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--backbones", default="resnet18,densenet121,efficientnet_b4")
    parser.add_argument("--size", type=int, default=224, help="input size of the specialists")
    parser.add_argument("--threads", type=int, default=2, help="thread budget (ORT, torch, FAISS)")
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--requests", type=int, default=96, help="requests per throughput measurement")
    parser.add_argument("--library", type=int, default=2000, help="case library size for the query path")
    parser.add_argument("--rad-sizes", default="100000,1000000")
    parser.add_argument("--skip", default="", help="comma-separated: ort, query, batching, rad")
    args = parser.parse_args()
    bench_environment()
    backbones = args.backbones.split(",")
    budget = ThreadBudget(args.threads)

    skip = set(args.skip.split(",")) - {""}
    sections: dict[str, list[str]] = {}
    if "ort" not in skip:
        sections["onnxruntime vs PyTorch eager (batch 1)"] = ort_vs_torch(
            backbones, args.size, args.reps, budget
        )
    if not {"query", "batching"} <= skip:
        with tempfile.TemporaryDirectory(prefix="gsco-bench-") as tmp:
            runtime, task = serving_runtime(Path(tmp), backbones[:3], args)
            if "query" not in skip:
                title = f"Full query path vs bare onnxruntime (3 specialists, library of {args.library})"
                sections[title] = query_path(runtime, task, args.reps)[0]
            if "batching" not in skip:
                sections["Micro-batching: throughput at concurrency 8 vs 1"] = throughput(
                    runtime, task, args.requests
                )
            runtime.close()
    if "rad" not in skip:
        sizes = [int(s) for s in args.rad_sizes.split(",") if s]
        sections["RAD top-10: HNSW vs exact (FAISS)"] = rad(sizes, 512, 200)

    header = (
        f"`bench/runtime.py` on {platform.machine()}, {os.cpu_count()} CPUs shared with other jobs, thread "
        f"budget {args.threads}, onnxruntime {ort.__version__}, torch {torch.__version__}, OpenMP passive; "
        f"specialists at {args.size} px with random weights."
    )
    for title, rows in sections.items():
        print(f"### {title}\n\n" + "\n".join(rows) + "\n")
    if args.write_docs:
        print(f"written to {write_docs(header, sections)}")


def serving_runtime(tmp: Path, backbones: list[str], args: argparse.Namespace) -> tuple[GscoRuntime, str]:
    """A throw-away registry with the backbones approved, a case library, and a runtime serving them."""
    world = make_world(tmp)
    task = world.new_task()
    for backbone in backbones:
        world.publish(task, backbone, "site-a", size=args.size)
    settings = RuntimeSettings(home=tmp / "hub", threads=args.threads)
    raw = RawCases(images=sample_images(args.library, seed=3), labels=np.arange(args.library) % 2)
    save_library(build_library(task, LABELS, raw), settings.home)
    runtime = GscoRuntime(RegistrySource(world.config), settings)
    runtime.pool.watch([task])
    return runtime, task


if __name__ == "__main__":
    main()
