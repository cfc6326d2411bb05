"""The native production topology (`deploy/local`, as `make up` starts it) under measurement.

1. Approval -> both hub replicas serving it: seconds from `approve` returning until both
   replicas list the version in `GET /v1/tasks` (median of 5 approvals; the hubs poll every
   ``--poll`` seconds, so this is about half a poll plus download, verification and loading).
2. Hub throughput at concurrency 16 against one replica, then spread over both (client-side
   round robin, as a load balancer would): diagnoses per second and their ratio.
3. A registry outage: the MLflow server stopped for ``--outage`` seconds while 4 clients diagnose
   on both replicas; requests answered / sent (must be all).

Everything runs on 127.0.0.1 against real processes (PostgreSQL, `mlflow server` with basic auth,
TLS SuperLink, two `gsco-hub serve`); specialists are randomly initialised.

    .venv/bin/python bench/topology.py                       # print the table
    nice -n 10 .venv/bin/python bench/topology.py --write-docs
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GSCO_KEY_PASSPHRASE", "bench-passphrase-123")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from bench.docs_section import publish  # noqa: E402
from bench.hub_load import Load, load  # noqa: E402
from bench.world import World, sample_images  # noqa: E402
from deploy.local.config import scratch_env  # noqa: E402
from registry.config import RegistryConfig  # noqa: E402
from registry.service import Registry  # noqa: E402

SECTION = "## Production topology (bench/topology.py)"
TASK = "bench-topology"
BACKBONE = "test_resnet"
SITES = ("site-a", "site-b")


class Topology:
    """`python -m deploy.local.topology` on a scratch state folder and free ports."""

    def __init__(self, state_dir: Path, poll_s: float) -> None:
        self.env = scratch_env(state_dir, poll_s)
        self.state_dir = state_dir
        self.state: dict = {}

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "deploy.local.topology", *args],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"topology {args[0]} failed: {done.stderr.strip()}")
        return done.stdout

    def secret(self, name: str) -> str:
        return (self.state_dir / "secrets" / name).read_text().strip()

    def act_as(self, user: str, password_secret: str) -> None:
        os.environ["MLFLOW_TRACKING_USERNAME"] = user
        os.environ["MLFLOW_TRACKING_PASSWORD"] = self.secret(password_secret)

    def config(self, home: Path) -> RegistryConfig:
        return RegistryConfig.resolve(
            home=home, tracking_uri=self.state["mlflow_url"], db_uri=self.state["mlflow_db_url"], retries=0
        )


def png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(sample_images(1, seed=seed)[0]).save(out, format="PNG")
    return out.getvalue()


def serving(hubs: list[str], token: str) -> list[set[str]]:
    found = []
    for url in hubs:
        answer = httpx.get(f"{url}/v1/tasks", headers={"Authorization": f"Bearer {token}"}, timeout=60)
        models = [m for t in answer.json()["tasks"] if t["task_id"] == TASK for m in t["models"]]
        found.append({f"{m['name']}/{m['version']}" for m in models})
    return found


def spread_load(hubs: list[str], token: str, image: bytes, concurrency: int, seconds: float) -> Load:
    """``load`` of diagnoses, each client pinned to one replica (round robin over ``hubs``)."""
    headers = {"Authorization": f"Bearer {token}"}
    counter = iter(range(10**9))
    pinned: dict[int, str] = {}

    def send(http: httpx.Client) -> httpx.Response:
        url = pinned.setdefault(id(http), f"{hubs[next(counter) % len(hubs)]}/v1/diagnoses")
        return http.post(url, data={"task_id": TASK}, files={"image": ("q.png", image)}, headers=headers)

    return load(send, concurrency, seconds)


def warm_up(hubs: list[str], token: str, image: bytes, answers: int = 3) -> float:
    """Diagnose on each replica until it answered ``answers`` times in a row (its sessions loaded)."""
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {token}"}
    for url in hubs:
        done = 0
        while done < answers:
            answer = httpx.post(
                f"{url}/v1/diagnoses", data={"task_id": TASK}, files={"image": ("q.png", image)},
                headers=headers, timeout=600,
            )  # fmt: skip
            done = done + 1 if answer.status_code == 200 else 0
    return time.monotonic() - started


def measure(args: argparse.Namespace, tmp: Path) -> list[str]:
    topo = Topology(tmp / "state", args.poll)
    started = time.monotonic()
    topo.state = json.loads(topo.run("up", "--json"))
    up_s = time.monotonic() - started
    try:
        hubs = list(topo.state["hubs"].values())
        topo.act_as("gsco-admin", "mlflow-admin.password")
        central = Registry.open(topo.config(Path(topo.state["central_home"])))
        central.create_task(TASK, ("normal", "pneumonia"), "chest X-ray")
        topo.run("grant", TASK)
        world = World(root=tmp / "world", config=topo.config(tmp / "sites"))
        for site in SITES:
            world.enroll(site)
        token_out = subprocess.run(
            [str(Path(sys.executable).with_name("gsco-hub")), "--home", str(tmp / "ops"), "tokens", "create",
             "--role", "clinician", "--name", "bench", "--config", topo.state["hub_config"], "--json"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        token = json.loads(token_out)["token"]

        delays: list[float] = []
        for seed in range(args.approvals):
            site = SITES[seed % len(SITES)]
            topo.act_as(site, f"mlflow-{site}.password")
            name, version = world.publish(TASK, BACKBONE, site, seed=seed, approve=False)
            topo.act_as("gsco-admin", "mlflow-admin.password")
            central.approve(name, version, reviewer="bench")
            approved = time.monotonic()
            # One approved version per registered model (TASK.BACKBONE.SITE): a new one replaces it.
            expected = {f"{ref.name}/{ref.version}" for ref in central.list_approved(TASK)}
            while any(s != expected for s in serving(hubs, token)):
                if time.monotonic() - approved > 120:
                    raise SystemExit(f"{name}/{version} not served by both replicas within 120 s")
                time.sleep(0.1)
            delays.append(time.monotonic() - approved)
        image = png(7)
        warm_s = warm_up(hubs, token, image)
        one = spread_load(hubs[:1], token, image, 16, args.duration)
        two = spread_load(hubs, token, image, 16, args.duration)

        topo.run("stop", "mlflow")
        outage = spread_load(hubs, token, image, 4, args.outage)
        readyz = [httpx.get(f"{url}/readyz", timeout=30).json()["status"] for url in hubs]
        topo.run("start", "mlflow")
        central.close()
    finally:
        topo.run("down")
    sent = len(outage.latencies) + outage.errors
    return [
        SECTION,
        "",
        f"`nice -n 10 .venv/bin/python bench/topology.py` on {platform.machine()}, {os.cpu_count()} cores, "
        "**shared with other jobs while it ran** (absolute numbers are noisy; compare within a run). "
        f"Topology up in {up_s:.0f} s; hubs poll every {args.poll:g} s; {len(expected)} specialists "
        f"({BACKBONE}, 64 px) served per diagnosis at the end; warm-up (3 sequential diagnoses per "
        f"replica) {warm_s:.0f} s.",
        "",
        "| measurement | result |",
        "|---|---|",
        f"| approve -> both replicas serving (median of {len(delays)}) | {statistics.median(delays):.1f} s "
        f"(min {min(delays):.1f}, max {max(delays):.1f}) |",
        f"| throughput, 1 replica, concurrency 16 | {one.throughput:.1f} diagnoses/s "
        f"(p50 {one.ms(50):.0f} ms, errors {one.errors}) |",
        f"| throughput, 2 replicas, concurrency 16 | {two.throughput:.1f} diagnoses/s "
        f"(p50 {two.ms(50):.0f} ms, errors {two.errors}) |",
        f"| ratio 2 replicas / 1 replica | **{two.throughput / one.throughput:.2f}x** |",
        f"| requests answered during a {args.outage:g} s registry outage "
        f"| **{len(outage.latencies)} / {sent}** (`/readyz`: {', '.join(sorted(set(readyz)))}) |",
        "",
        f"The issue expected a ratio of about 1 on {os.cpu_count()} cores, on the view that one "
        "replica's ONNX sessions keep every core busy. That holds when inference dominates. Here it "
        "does not, for two reasons not separated by this run: with tiny 64 px specialists a "
        "replica (one process, one worker) likely spends most of a request in Python (decoding, "
        "preprocessing, JSON) under one GIL, so it can use about one core only; and on this shared "
        "machine "
        "the scheduler gives every runnable process a similar share, so two hub processes get about "
        "twice the CPU of one while other jobs compete. On a dedicated host with full-size "
        "specialists expect less gain; a second replica buys availability in any case (one is "
        "stopped or upgraded while the other answers), and throughput scales with hosts.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--approvals", type=int, default=5)
    parser.add_argument("--duration", type=float, default=20.0, help="Seconds per throughput run.")
    parser.add_argument("--outage", type=float, default=30.0, help="Seconds the registry is down.")
    parser.add_argument("--poll", type=float, default=2.0, help="The hubs' poll interval.")
    parser.add_argument("--write-docs", action="store_true", help="Update docs/operations.md.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gsco-bench-topology-") as tmp:
        lines = measure(args, Path(tmp))
    publish(lines, "operations.md", "Operations guide: the production topology", write=args.write_docs)


if __name__ == "__main__":
    main()
