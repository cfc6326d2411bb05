"""`gsco-hub serve` under load on loopback, with its baselines measured side by side in one run.

1. The running service (one worker, real signed and approved specialists, a case library) at
   concurrency 1, 8 and 32: throughput, p50 / p99 latency, errors (must be 0).
2. The same at concurrency 8 while three approvals and one revocation are hot-applied through the
   registry and ``POST /v1/admin/refresh``: failed requests (must be 0).
3. The cold ``gsco-hub diagnose`` process per image (registry, sessions, RAD index cache, decision).
4. Bare onnxruntime on the same specialists (same thread budget): the service's per-request
   overhead as a ratio and in milliseconds.
5. MLflow's own model server (``mlflow models serve --env-manager local``, one worker) on one of
   the same ONNX specialists logged as an MLflow onnx model, at concurrency 1 and 8: its overhead
   over bare onnxruntime on that specialist, next to ours.

Everything listens on 127.0.0.1 only; specialists are randomly initialised (latency does not depend
on the weights). The load generator runs in this process and shares the machine with the servers.

    .venv/bin/python bench/hub_load.py                                # 60 s per measurement
    .venv/bin/python bench/hub_load.py --duration 20 --write-docs     # shorter, and update the docs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import onnx
import onnxruntime as ort
import yaml
from PIL import Image

from gsco_common.net import free_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import bench_environment, bench_parser  # noqa: E402
from bench.docs_section import publish  # noqa: E402
from bench.world import LABELS, World, exported, make_world, sample_images  # noqa: E402
from gsco_runtime.cases.library import build_library, save_library  # noqa: E402
from gsco_runtime.cases.readers import RawCases  # noqa: E402
from gsco_runtime.pool.threads import ThreadBudget  # noqa: E402
from registry.bundle.preprocess import preprocess  # noqa: E402

SECTION = "## Hub service under load (gsco-hub serve)"
BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Load:
    """One load measurement: every request's latency (s) and how many failed."""

    concurrency: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds

    def ms(self, q: float) -> float:
        return 1000 * float(np.percentile(self.latencies, q))


def load(send: Callable[[httpx.Client], httpx.Response], concurrency: int, seconds: float) -> Load:
    """``concurrency`` closed-loop clients calling ``send`` for ``seconds``; non-200 answers are errors."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    stop = time.perf_counter() + seconds

    def client(index: int) -> None:
        with httpx.Client(timeout=120) as http:
            while time.perf_counter() < stop:
                start = time.perf_counter()
                try:
                    ok = send(http).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies[index].append(time.perf_counter() - start)
                else:
                    errors[index] += 1

    began = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Load(concurrency, time.perf_counter() - began, [x for xs in latencies for x in xs], sum(errors))


def wait_ready(url: str, process: subprocess.Popen, timeout_s: float = 600) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode} before it was ready ({url})")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"server not ready after {timeout_s} s ({url})")


@contextmanager
def running(cmd: list[str], ready_url: str, log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    with log.open("w") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            wait_ready(ready_url, process)
            yield
        finally:
            process.terminate()
            process.wait(60)


def hub_cli(home: Path, *args: str) -> str:
    cmd = [str(BIN / "gsco-hub"), "--home", str(home), *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


@dataclass
class Setup:
    world: World
    task: str
    backbones: list[str]
    size: int
    image_png: Path


def build(tmp: Path, backbones: list[str], size: int, library: int) -> Setup:
    """A registry with the backbones approved for one task, a case library and a query image."""
    world = make_world(tmp)
    task = world.new_task()
    for backbone in backbones:
        world.publish(task, backbone, "site-a", size=size)
    raw = RawCases(images=sample_images(library, seed=3), labels=np.arange(library) % 2)
    save_library(build_library(task, LABELS, raw), world.config.home)
    image = tmp / "query.png"
    Image.fromarray(sample_images(1, seed=42)[0]).save(image)
    return Setup(world, task, backbones, size, image)


def hot_changes(setup: Setup, url: str, admin: str, at: float, log: list[str]) -> Callable[[], None]:
    """Three approvals and one revocation, each applied with ``POST /v1/admin/refresh`` at once.

    The bundles are built (ONNX export, signing) before the load starts; during it only the
    registry operations and the service's verified swaps happen.
    """
    first, second = setup.backbones[0], setup.backbones[1 % len(setup.backbones)]
    folders = [
        setup.world.bundle(setup.task, first, "site-a", seed=1, size=setup.size),
        setup.world.bundle(setup.task, second, "site-a", seed=1, size=setup.size),
        setup.world.bundle(setup.task, first, "site-b", seed=2, size=setup.size),
    ]
    revoke = (f"{setup.task}.{setup.backbones[-1]}.site-a", "1")

    def apply() -> None:
        time.sleep(at)
        headers = {"Authorization": f"Bearer {admin}"}
        with setup.world.registry() as registry:
            for folder in folders:
                result = registry.publish(folder)
                registry.approve(result.name, result.version, reviewer="bench")
                httpx.post(f"{url}/v1/admin/refresh", headers=headers, timeout=600).raise_for_status()
                log.append(f"approved {result.name} v{result.version}")
                time.sleep(2)
            registry.revoke(*revoke, reason="bench", reviewer="bench")
            httpx.post(f"{url}/v1/admin/refresh", headers=headers, timeout=600).raise_for_status()
            log.append(f"revoked {revoke[0]} v{revoke[1]}")

    return apply


def bare_ort_ms(backbones: list[str], size: int, threads: int, reps: int) -> dict[str, float]:
    """Median ms of each specialist's bare session run (batch 1, the service's thread budget)."""
    budget = ThreadBudget(threads)
    out = {}
    for backbone in backbones:
        data, model = exported(backbone, 0, len(LABELS), size)
        session = ort.InferenceSession(data, budget.session_options(), providers=["CPUExecutionProvider"])
        batch = preprocess(sample_images(1, seed=42)[0], model.preprocessing)[None]
        for _ in range(5):
            session.run(None, {"image": batch})
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            session.run(None, {"image": batch})
            times.append((time.perf_counter() - start) * 1000)
        out[backbone] = statistics.median(times)
    return out


def log_mlflow_model(tmp: Path, backbone: str, size: int) -> tuple[str, str]:
    """Log one specialist as an MLflow onnx model; returns (tracking URI, model URI)."""
    import mlflow
    import mlflow.onnx

    data, _ = exported(backbone, 0, len(LABELS), size)
    uri = f"sqlite:///{tmp / 'mlflow-peer.db'}"
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run():
        info = mlflow.onnx.log_model(
            onnx.load_from_string(data), name="specialist", onnx_execution_providers=["CPUExecutionProvider"]
        )
    return uri, info.model_uri


def row(name: str, result: Load) -> str:
    return (
        f"| {name} | {result.concurrency} | {result.throughput:.1f} | {result.ms(50):.1f} | "
        f"{result.ms(99):.1f} | {len(result.latencies)} | {result.errors} |"
    )


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--backbones", default="resnet18,densenet121,efficientnet_b4")
    parser.add_argument("--size", type=int, default=64, help="input size of the specialists")
    parser.add_argument("--threads", type=int, default=2, help="the service's thread budget")
    parser.add_argument("--library", type=int, default=500, help="reference cases in the case library")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per load measurement")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--peer-concurrency", default="1,8")
    parser.add_argument("--cold-runs", type=int, default=3, help="cold `gsco-hub diagnose` processes")
    parser.add_argument("--reps", type=int, default=50, help="repetitions of each bare session run")
    args = parser.parse_args()
    bench_environment()
    backbones = args.backbones.split(",")
    levels = [int(c) for c in args.concurrency.split(",")]
    peer_levels = [int(c) for c in args.peer_concurrency.split(",")]

    with tempfile.TemporaryDirectory(prefix="gsco-hub-load-") as name:
        tmp = Path(name)
        setup = build(tmp, backbones, args.size, args.library)
        home = setup.world.config.home
        config = tmp / "hub.yaml"
        config.write_text(yaml.safe_dump({"threads": args.threads, "poll_interval_s": 3600.0}))
        clinician = json.loads(
            hub_cli(home, "tokens", "create", "--role", "clinician", "--name", "b", "--json")
        )
        admin = json.loads(hub_cli(home, "tokens", "create", "--role", "admin", "--name", "a", "--json"))
        port = free_port()
        url = f"http://{LOOPBACK}:{port}"
        image = setup.image_png.read_bytes()
        headers = {"Authorization": f"Bearer {clinician['token']}"}

        def ask(http: httpx.Client) -> httpx.Response:
            files = {"image": ("q.png", image, "image/png")}
            return http.post(
                f"{url}/v1/diagnoses", headers=headers, data={"task_id": setup.task}, files=files
            )

        serve = [str(BIN / "gsco-hub"), "--home", str(home), "serve", "--host", LOOPBACK, "--port", str(port)]
        serve += ["--workers", "1", "--config", str(config)]
        ours: dict[int, Load] = {}
        changes: list[str] = []
        with running(serve, f"{url}/readyz", tmp / "hub.log"):
            load(ask, 2, 5)  # warm-up
            for c in sorted(set(levels) | set(peer_levels)):
                ours[c] = load(ask, c, args.duration)
                print(row("gsco-hub serve", ours[c]), flush=True)
            apply = hot_changes(setup, url, admin["token"], args.duration / 6, changes)
            applier = threading.Thread(target=apply)
            applier.start()
            hot = load(ask, 8, args.duration)
            applier.join()
            print(row("gsco-hub serve, hot swaps", hot), changes, flush=True)
            tasks = httpx.get(f"{url}/v1/tasks", headers=headers).json()["tasks"]
            serving = [
                f"{m['name']} v{m['version']}"
                for t in tasks
                if t["task_id"] == setup.task
                for m in t["models"]
            ]
        cold = []
        for _ in range(args.cold_runs):
            start = time.perf_counter()
            hub_cli(home, "diagnose", str(setup.image_png), "--task", setup.task, "--json")
            cold.append(time.perf_counter() - start)
        bare = bare_ort_ms(backbones, args.size, args.threads, args.reps)
        print("bare onnxruntime ms:", bare, "cold s:", cold, flush=True)

        peer_port = free_port()
        peer_url = f"http://{LOOPBACK}:{peer_port}"
        tracking, model_uri = log_mlflow_model(tmp, backbones[0], args.size)
        _, model = exported(backbones[0], 0, len(LABELS), args.size)
        tensor = preprocess(sample_images(1, seed=42)[0], model.preprocessing)[None]
        payload = json.dumps({"inputs": {"image": tensor.tolist()}})

        def ask_peer(http: httpx.Client) -> httpx.Response:
            return http.post(
                f"{peer_url}/invocations", content=payload, headers={"Content-Type": "application/json"}
            )

        env = dict(os.environ, MLFLOW_TRACKING_URI=tracking, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
        peer_cmd = [str(BIN / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local"]
        peer_cmd += ["-h", LOOPBACK, "-p", str(peer_port), "--workers", "1"]
        peer: dict[int, Load] = {}
        with running(peer_cmd, f"{peer_url}/ping", tmp / "mlflow.log", env):
            load(ask_peer, 2, 5)
            for c in peer_levels:
                peer[c] = load(ask_peer, c, args.duration)
                print(row("mlflow models serve", peer[c]), flush=True)

    lines = report(args, ours, hot, changes, serving, cold, bare, peer, backbones)
    publish(lines, "benchmarks.md", "Benchmarks", write=args.write_docs)


def report(
    args: argparse.Namespace,
    ours: dict[int, Load],
    hot: Load,
    changes: list[str],
    serving: list[str],
    cold: list[float],
    bare: dict[str, float],
    peer: dict[int, Load],
    backbones: list[str],
) -> list[str]:
    bare_sum = sum(bare.values())
    one = bare[backbones[0]]
    levels = [int(c) for c in args.concurrency.split(",")]
    lines = [
        SECTION,
        "",
        f"`bench/hub_load.py --duration {args.duration:g}` on {platform.machine()}, {os.cpu_count()} CPUs "
        f"shared with other jobs (the load generator runs on the same CPUs), onnxruntime {ort.__version__}; "
        f"one service worker with thread budget {args.threads}; specialists {', '.join(backbones)} at "
        f"{args.size} px with random weights; case library of {args.library}; one PNG per request "
        "(multipart upload, decode, preprocessing, MoED, RAD k=10, consensus, decision stored and audited).",
        "",
        "### The service at rising concurrency",
        "",
        "| server | concurrency | requests/s | p50 ms | p99 ms | requests | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(row("gsco-hub serve", ours[c]) for c in levels),
        row("gsco-hub serve, 3 approvals + 1 revocation hot-applied", hot),
        "",
        f"Hot changes during that run: {'; '.join(changes)}. Serving afterwards: {', '.join(serving)}.",
        "",
        "### Against the cold command and bare onnxruntime",
        "",
        "| measurement | ms | ratio |",
        "|---|---:|---:|",
        f"| bare onnxruntime, the {len(bare)} specialists one after the other "
        f"({', '.join(f'{b} {ms:.2f}' for b, ms in bare.items())}) | {bare_sum:.2f} | 1.00 |",
        f"| `gsco-hub serve`, p50 at concurrency 1 | {ours[1].ms(50):.1f} "
        f"| {ours[1].ms(50) / bare_sum:.2f} |",
        f"| cold `gsco-hub diagnose` process per image (median of {len(cold)}) | "
        f"{1000 * statistics.median(cold):.0f} | {1000 * statistics.median(cold) / bare_sum:.1f} |",
        "",
        f"### Against MLflow's model server on one specialist ({backbones[0]})",
        "",
        "MLflow serves the bare network: the request carries the preprocessed tensor as JSON and gets "
        "logits and embedding back. Ours carries a PNG and returns a decision from all specialists, "
        "retrieval and the arbiter, stored and audited. Overhead = p50 minus the bare onnxruntime runs "
        "each server has to do.",
        "",
        "| server | concurrency | requests/s | p50 ms | p99 ms | requests | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in sorted(peer):
        lines += [
            row(f"gsco-hub serve ({len(bare)} specialists)", ours[c]),
            row("mlflow models serve (1 specialist)", peer[c]),
        ]
    lines += [
        "",
        "| concurrency | ours: p50 minus bare, ms (ratio) | MLflow: p50 minus bare, ms (ratio) |",
        "|---:|---:|---:|",
    ]
    for c in sorted(peer):
        mine, theirs = ours[c].ms(50), peer[c].ms(50)
        lines.append(
            f"| {c} | {mine - bare_sum:.1f} ({mine / bare_sum:.2f}x) "
            f"| {theirs - one:.1f} ({theirs / one:.2f}x) |"
        )
    return lines


if __name__ == "__main__":
    main()
