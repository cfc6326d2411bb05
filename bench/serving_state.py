"""Cost of the signed serving-state check on a hub refresh.

Builds a real registry (MLflow on SQLite) with one task and three approved specialists, loads them
into a pool, then times, side by side and interleaved, (a) a whole ``SpecialistPool.refresh()``
with nothing new to load (the baseline: registry queries, trust store, cache bookkeeping) and
(b) the signed-state check alone inside it: ECDSA verification of the approved-set statement
with the pinned key plus the anti-rollback sequence check (read of the hub's sequence file).

    PYTHONPATH=. python bench/serving_state.py [--repeats 50] [--write-docs]
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import bench_environment, bench_parser
from bench.docs_section import publish
from bench.world import make_world
from gsco_runtime.pool.cache import BundleCache
from gsco_runtime.pool.pool import SpecialistPool
from gsco_runtime.pool.registry_source import RegistrySource


def _ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    bench_environment()
    with tempfile.TemporaryDirectory(prefix="gsco-bench-state-") as tmp:
        world = make_world(Path(tmp) / "world")
        task = world.new_task()
        for seed, backbone in enumerate(("test_resnet", "test_efficientnet", "test_vit")):
            world.publish(task, backbone, "site-a" if seed % 2 == 0 else "site-b", seed=seed)
        source = RegistrySource(world.config, hub_home=Path(tmp) / "hub")
        pool = SpecialistPool(source, BundleCache(Path(tmp) / "cache"))
        pool.watch([task])
        with world.registry() as registry:
            signed = registry.serving_statement(task)
        refresh: list[float] = []
        check: list[float] = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            pool.refresh()
            refresh.append(time.perf_counter() - start)
            start = time.perf_counter()
            source.admit_cached(task, None if signed is None else signed.to_dict())
            check.append(time.perf_counter() - start)
        served = len(pool.snapshot(task).specialists)
        pool.source.close()
    lines = [
        "## Signed serving state: cost on a refresh",
        "",
        f"`bench/serving_state.py --repeats {args.repeats}` on {platform.machine()}, "
        f"{os.cpu_count()} CPUs; one task, {served} approved specialists, embedded registry "
        "(MLflow on SQLite). Medians of interleaved runs.",
        "",
        "| measured | median ms | ratio to the refresh |",
        "|---|---|---|",
        f"| whole `pool.refresh()`, nothing new to load (baseline) | {_ms(refresh):.2f} | 1.00 |",
        f"| signed approved-set check (ECDSA verify + rollback check) | {_ms(check):.2f} | "
        f"{_ms(check) / _ms(refresh):.3f} |",
        "",
        "The check is part of every refresh; the target is at most 5 ms.",
    ]
    publish(lines, "security.md", "Security", write=args.write_docs)


if __name__ == "__main__":
    main()
