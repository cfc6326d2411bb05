from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from gsco_common.errors import RuntimeServiceError
from gsco_runtime.arbiters.prompts import gsco_prompt
from gsco_runtime.cases.library import build_library, save_library
from gsco_runtime.cases.readers import RawCases
from gsco_runtime.config import RuntimeSettings
from gsco_runtime.decision import AI_LABEL, NO_GENERALIST
from gsco_runtime.engine import GscoRuntime
from gsco_runtime.generalists.openai_http import OpenAIBackend
from gsco_runtime.pool.registry_source import RegistrySource
from tests.gsco_runtime.chat_server import ChatServer, Step, start_chat_server
from tests.gsco_runtime.world import LABELS, MODALITY, World, sample_images
from tests.site_bundle import REAL_SITES, SiteBundle, publish_real

QUERY = sample_images(1, seed=99)[0]


@pytest.fixture(scope="module")
def task(world: World, real: tuple[SiteBundle, ...]) -> str:
    """A task with the three real specialists approved, each from its own site."""
    task_id = world.new_task()
    for specialist in real:
        publish_real(world, task_id, specialist)
    return task_id


def _library(home: Path, task_id: str, n: int = 40) -> None:
    raw = RawCases(images=sample_images(n, seed=5), labels=np.arange(n) % 2)
    save_library(build_library(task_id, LABELS, raw), home)


@pytest.fixture
def server() -> Iterator[ChatServer]:
    state, http = start_chat_server()
    yield state
    http.shutdown()


@contextmanager
def _runtime(
    world: World, settings: RuntimeSettings, task_id: str, **kwargs: object
) -> Iterator[GscoRuntime]:
    """A runtime serving ``task_id``, closed when the block ends."""
    runtime = GscoRuntime(RegistrySource(world.config), settings, **kwargs)  # type: ignore[arg-type]
    try:
        runtime.start([task_id])
        yield runtime
    finally:
        runtime.close()


def test_consensus_decision_carries_the_evidence(world: World, task: str, settings: RuntimeSettings) -> None:
    _library(settings.home, task)
    with _runtime(world, settings, task) as runtime:
        decision = runtime.diagnose(QUERY, task)
    assert decision.label in LABELS and 0.5 <= decision.confidence <= 1.0
    assert decision.arbiter == f"consensus ({NO_GENERALIST})" and decision.generalist is None
    assert NO_GENERALIST in decision.notes and decision.disclaimer == AI_LABEL
    assert not decision.fallback and decision.generalist_answer is None
    assert len(decision.specialists) == 3
    fingerprints = {op.site_fingerprint for op in decision.specialists}
    assert fingerprints == {world.sites[site].fingerprint for site in REAL_SITES}
    for op in decision.specialists:
        assert op.version == "1" and op.label in LABELS and op.probability == max(op.probabilities.values())
    assert len(decision.retrieved) == 10
    names = [op.model_name for op in decision.specialists]
    for name in names:  # each specialist's cases in its own order (cosines of one space)
        sims = [case.similarity for case in decision.retrieved if case.specialist == name]
        assert sims == sorted(sims, reverse=True)
    assert decision.retrieved[0].specialist == names[0]  # fused by rank: the first specialist's best first
    assert all(c.case_id.startswith(f"{task}-") for c in decision.retrieved)
    assert set(decision.latency_ms) == {"moed", "rad", "arbiter", "total"}
    as_dict = decision.to_dict()
    assert as_dict["specialists"][0]["model_name"] and as_dict["retrieved"][0]["case_id"]
    assert "AI generated" in decision.render()


def test_retrieval_indexes_are_cached_across_restarts(
    world: World, task: str, settings: RuntimeSettings
) -> None:
    _library(settings.home, task)
    with _runtime(world, settings, task) as first:
        before = first.diagnose(QUERY, task)
    cached_weights = list((settings.resolved_cache_dir / "consensus").glob("*.json"))
    assert len(cached_weights) == 1
    stored = json.loads(cached_weights[0].read_text())
    stored["bias"] = [0.0, 0.125]  # a marker: the restarted runtime must read the file, not refit
    cached_weights[0].write_text(json.dumps(stored))
    with _runtime(world, settings, task) as second:
        retriever = second.retriever(task)
        assert retriever is not None
        for specialist in second.pool.snapshot(task).specialists:
            assert retriever.ensure(specialist.info.model_digest, specialist.predict_many).from_cache
        after = second.diagnose(QUERY, task)
        model = second.consensus.model_for(second.pool.snapshot(task).specialists, retriever)
    assert model.bias.tolist() == [0.0, 0.125]
    assert [c.case_id for c in after.retrieved] == [c.case_id for c in before.retrieved]


def test_without_case_library_the_decision_says_so(
    world: World, task: str, settings: RuntimeSettings
) -> None:
    with _runtime(world, settings, task) as runtime:
        decision = runtime.diagnose(QUERY, task)
        assert decision.retrieved == ()
        assert any("no case library" in note for note in decision.notes)
        with pytest.raises(RuntimeServiceError, match="needs a generalist"):
            runtime.report(QUERY, task)


def test_meddr_arbiter_sends_the_gsco_prompt_and_decides(
    world: World, task: str, settings: RuntimeSettings, server: ChatServer
) -> None:
    _library(settings.home, task)
    server.reply(Step(text="Pneumonia."))
    backend = OpenAIBackend(server.url, "MedDr", timeout_s=10)
    with _runtime(world, settings, task, generalist=backend) as runtime:
        decision = runtime.diagnose(QUERY, task)
        views = runtime.evidence(QUERY, runtime.pool.snapshot(task), {}).specialist_views()
    assert server.shape_errors == []
    assert decision.label == "pneumonia" and decision.arbiter == "meddr"
    assert decision.generalist == "openai:MedDr" and decision.generalist_answer == "Pneumonia."
    assert not decision.fallback and NO_GENERALIST not in " ".join(decision.notes)
    sent = server.requests[-1]["messages"][-1]["content"][1]["text"]
    assert [v.label for v in views] == [o.label for o in decision.specialists]
    assert all(len(v.similar) == 10 for v in views)  # each specialist's own k cases
    assert sent == gsco_prompt(MODALITY, LABELS, views)
    assert "specialist model 3" in sent and all(op.model_name not in sent for op in decision.specialists)
    assert server.requests[-1]["messages"][0]["content"] == "Answer the questions."


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        (Step(text="It could be either."), "names no single option"),
        (Step(status=500), "generalist error"),
        (Step(text="pneumonia", delay_s=3.0), "generalist timeout"),
    ],
)
def test_meddr_falls_back_to_consensus_and_flags_it(
    world: World, task: str, tmp_path: Path, server: ChatServer, step: Step, reason: str
) -> None:
    settings = RuntimeSettings(home=tmp_path / "home", generalist_timeout_s=0.5)
    server.reply(step)
    backend = OpenAIBackend(server.url, "MedDr", timeout_s=10, max_retries=0)
    with _runtime(world, settings, task, generalist=backend) as runtime:
        decision = runtime.diagnose(QUERY, task)
        consensus = runtime.consensus.decide(runtime.evidence(QUERY, runtime.pool.snapshot(task), {}))
    assert decision.fallback and reason in (decision.fallback_reason or "")
    assert decision.arbiter == f"consensus ({NO_GENERALIST})"
    assert any(note.startswith(NO_GENERALIST) for note in decision.notes)
    assert decision.label == LABELS[consensus.label_index]


def test_synonyms_from_the_hub_task_definition(
    world: World, task: str, settings: RuntimeSettings, server: ChatServer
) -> None:
    (settings.home / "hub").mkdir(parents=True)
    (settings.home / "hub" / "tasks.yaml").write_text(
        f"tasks:\n  {task}:\n    synonyms:\n      pneumonia: [consolidation]\n"
    )
    server.reply(Step(text="Lobar consolidation."))
    backend = OpenAIBackend(server.url, "MedDr", timeout_s=10)
    with _runtime(world, settings, task, generalist=backend) as runtime:
        decision = runtime.diagnose(QUERY, task)
    assert decision.label == "pneumonia" and not decision.fallback


def test_report_prompt_lists_each_specialists_own_cases_labels_and_reports(
    world: World, task: str, settings: RuntimeSettings, server: ChatServer
) -> None:
    reports = [f"{'Patchy opacity' if i % 2 else 'Clear lungs'}, film {i}." for i in range(40)]
    raw = RawCases(images=sample_images(40, seed=5), labels=np.arange(40) % 2, reports=reports)
    save_library(build_library(task, LABELS, raw), settings.home)
    server.reply(Step(text="Findings: patchy opacity. Impression: pneumonia."))
    backend = OpenAIBackend(server.url, "MedDr", timeout_s=10)
    with _runtime(world, settings, task, generalist=backend) as runtime:
        report = runtime.report(QUERY, task)
        retriever = runtime.retriever(task)
        assert retriever is not None
        found = []  # each specialist's own search, done here: rows of the library, most similar first
        for specialist in runtime.pool.snapshot(task).specialists:
            _, embedding = specialist.predict_many([QUERY])
            rows = retriever.search(specialist.info.model_digest, specialist.predict_many, embedding[0]).rows
            found.append(rows.tolist())
    assert report.text.startswith("Findings") and report.disclaimer == AI_LABEL and server.shape_errors == []
    prompt = server.requests[-1]["messages"][-1]["content"][1]["text"]
    assert len(found) == 3 and all(len(rows) == 10 for rows in found) and found[0] != found[1]
    for number, (op, rows) in enumerate(zip(report.specialists, found, strict=True), start=1):
        labels = ",".join(LABELS[row % 2] for row in rows)
        cases = "; ".join(f'case {i} ({LABELS[row % 2]}): "{reports[row]}"' for i, row in enumerate(rows, 1))
        block = (
            f"The diagnosis of specialist model {number} is {op.label} (probability {op.probability:.2f}). "
            f"The diagnoses of the most similar cases it retrieved are {labels}. Their reports: {cases}."
        )
        assert block in prompt
        assert op.model_name not in prompt  # numbered, never named


def test_case_library_with_other_labels_is_reported(
    world: World, task: str, settings: RuntimeSettings
) -> None:
    raw = RawCases(images=sample_images(10, seed=1), labels=np.arange(10) % 2)
    save_library(build_library(task, ("benign", "malignant"), raw), settings.home)
    runtime = GscoRuntime(RegistrySource(world.config), settings)
    runtime.pool.watch([task])
    failures = runtime.pool.status().failures
    assert failures and all("other labels" in f.message for f in failures)
    with pytest.raises(RuntimeServiceError):
        runtime.diagnose(QUERY, task)


def test_concurrent_requests_are_micro_batched(world: World, task: str, tmp_path: Path) -> None:
    settings = RuntimeSettings(home=tmp_path / "home", max_wait_ms=500, max_batch=8)
    barrier = threading.Barrier(8)
    decisions = []
    with _runtime(world, settings, task) as runtime:

        def worker(seed: int) -> None:
            barrier.wait()
            decisions.append(runtime.diagnose(sample_images(1, seed=seed)[0], task))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        specialists = runtime.pool.snapshot(task).specialists
    assert len(decisions) == 8
    for specialist in specialists:
        # fewer session calls than requests: concurrent requests shared batches
        assert specialist.batcher.items_run == 8 and specialist.batcher.batches_run < 8


def test_a_new_case_library_is_picked_up_on_refresh(
    world: World, task: str, settings: RuntimeSettings
) -> None:
    with _runtime(world, settings, task) as runtime:
        assert runtime.diagnose(QUERY, task).retrieved == ()
        assert runtime.refresh_case_libraries() == []  # nothing imported yet: nothing changed
        _library(settings.home, task, n=12)
        assert runtime.refresh_case_libraries() == [task]
        first = runtime.diagnose(QUERY, task).retrieved
        assert len(first) == 10 and runtime.refresh_case_libraries() == []
        _library(settings.home, task, n=4)  # a later import replaces it
        assert runtime.diagnose(QUERY, task).retrieved == first  # until the next refresh
        assert runtime.refresh_case_libraries() == [task]
        assert len(runtime.diagnose(QUERY, task).retrieved) == 4


def test_a_revoked_specialists_index_is_freed(
    own_world: World, real: tuple[SiteBundle, ...], settings: RuntimeSettings
) -> None:
    world = own_world  # revokes a real specialist: not in the session registry
    task_id = world.new_task()
    publish_real(world, task_id, real[0])
    revoked = publish_real(world, task_id, real[1])
    _library(settings.home, task_id, n=12)
    with _runtime(world, settings, task_id) as runtime:
        retriever = runtime.retriever(task_id)
        assert retriever is not None
        by_name = {s.info.name: s for s in runtime.pool.snapshot(task_id).specialists}
        kept, leaving = by_name[next(n for n in by_name if n != revoked[0])], by_name[revoked[0]]
        kept_index = retriever.ensure(kept.info.model_digest, kept.predict_many)
        leaving_index = retriever.ensure(leaving.info.model_digest, leaving.predict_many)
        world.revoke(*revoked)
        runtime.pool.refresh()
        assert [s.info.name for s in runtime.pool.snapshot(task_id).specialists] == [kept.info.name]
        # the kept specialist's index stays in memory; the revoked one's was dropped (a new
        # ensure reads it again from the disk cache instead of returning the same object)
        assert retriever.ensure(kept.info.model_digest, kept.predict_many) is kept_index
        reloaded = retriever.ensure(leaving.info.model_digest, leaving.predict_many)
        assert reloaded is not leaving_index and reloaded.from_cache
