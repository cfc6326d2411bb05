"""Hot swap: approvals and revocations while requests keep flowing, without a failed diagnosis."""

from __future__ import annotations

import threading
import time

from gsco_runtime.config import RuntimeSettings
from gsco_runtime.engine import GscoRuntime
from gsco_runtime.pool.registry_source import RegistrySource
from tests.gsco_runtime.world import World, sample_images
from tests.site_bundle import SiteBundle, publish_real

POLL_S = 0.5
SLACK_S = 3.0  # registry query and thread scheduling on a busy 2-core machine


def test_approve_and_revoke_while_diagnosing(
    own_world: World, real: tuple[SiteBundle, ...], settings: RuntimeSettings
) -> None:
    world = own_world  # revokes a real specialist: not in the session registry
    task = world.new_task()
    keep = publish_real(world, task, real[0])
    revoke = publish_real(world, task, real[1])
    new = publish_real(world, task, real[2], approve=False)
    key = {name: f"{n}/{v}" for name, (n, v) in {"keep": keep, "revoke": revoke, "new": new}.items()}

    runtime = GscoRuntime(
        RegistrySource(world.config), settings.model_copy(update={"poll_interval_s": POLL_S})
    )
    runtime.start([task])
    images = sample_images(8, seed=3)
    seen: list[tuple[float, frozenset[str]]] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def keep_diagnosing() -> None:
        i = 0
        while not stop.is_set():
            try:
                decision = runtime.diagnose(images[i % len(images)], task)
                seen.append(
                    (time.monotonic(), frozenset(f"{o.model_name}/{o.version}" for o in decision.specialists))
                )
            except Exception as exc:  # the test counts every failure, whatever its type
                failures.append(exc)
            i += 1

    workers = [threading.Thread(target=keep_diagnosing) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(1.0)
        world.approve(*new)
        approved_at = time.monotonic()
        world.revoke(*revoke)
        revoked_at = time.monotonic()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if seen and key["new"] in seen[-1][1] and key["revoke"] not in seen[-1][1]:
                break
            time.sleep(0.05)
        settled_at = time.monotonic()
        time.sleep(1.0)  # keep diagnosing on the new pool for a while
    finally:
        stop.set()
        for worker in workers:
            worker.join()
        status = runtime.pool.status()
        runtime.close()

    assert failures == []
    assert len(seen) > 10
    first_new = next(t for t, keys in seen if key["new"] in keys)
    load_s = status.load_seconds[key["new"]]
    print(
        f"{len(seen)} diagnoses; new version serving {first_new - approved_at:.2f} s after approval "
        f"(poll {POLL_S} s + load {load_s:.2f} s)"
    )
    assert first_new - approved_at <= POLL_S + load_s + SLACK_S
    last_revoked = max(t for t, keys in seen if key["revoke"] in keys)
    assert last_revoked - revoked_at <= POLL_S + load_s + SLACK_S
    after = [keys for t, keys in seen if t > settled_at]
    assert after and all(key["revoke"] not in keys and key["new"] in keys for keys in after)
    assert all(key["keep"] in keys for _, keys in seen)
    assert status.tasks[task] == sorted([key["keep"], key["new"]])
