"""`POST /v1/reports` through a real OpenAI-compatible generalist on loopback (MoE context, audit)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import httpx
import pytest

from hub.service.app import create_app
from hub.service.settings import load_settings
from tests.gsco_runtime.chat_server import ChatServer, Step, start_chat_server
from tests.hub.service.conftest import Hub, query_image, serving

REPORT = "Findings: patchy opacity in the right lower lobe. Impression: pneumonia."


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    state, server = start_chat_server()
    yield state
    server.shutdown()
    server.server_close()


def test_report_is_the_generalists_text_with_the_specialists_as_context(hub: Hub, chat: ChatServer) -> None:
    settings = load_settings(
        hub.world.config, None, {"poll_interval_s": 30, "generalist_url": chat.url, "tasks": [hub.task]}
    )
    image = query_image(31)
    clinician = {"Authorization": f"Bearer {hub.clinician}"}
    with serving(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as client:
        # the specialists' opinions on this image, without the generalist (nothing reaches it)
        decision = client.post(
            "/v1/diagnoses",
            headers=clinician,
            data={"task_id": hub.task, "generalist": "false"},
            files={"image": ("x.png", image)},
        ).json()
        assert decision["generalist_used"] is False and chat.requests == []
        chat.reply(Step(text=f"  {REPORT}\n"))
        response = client.post(
            "/v1/reports", headers=clinician, data={"task_id": hub.task}, files={"image": ("x.png", image)}
        )
        entries = client.get(
            "/v1/audit", headers={"Authorization": f"Bearer {hub.admin}"}, params={"limit": 1}
        ).json()["entries"]

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == REPORT
    assert body["generalist"] == "openai:MedDr" and body["task_id"] == hub.task
    assert body["ai_label"] == "AI generated, not for clinical use"
    served = sorted((s["model_name"], s["version"], s["digest"]) for s in decision["specialists"])
    assert sorted((m["name"], m["version"], m["digest"]) for m in body["models"]) == served

    # the generalist got one well-formed request whose prompt carries every specialist's finding
    assert chat.shape_errors == [] and len(chat.requests) == 1
    request = chat.requests[0]
    assert request["model"] == "MedDr" and request["messages"][0]["role"] == "system"
    prompt = next(p["text"] for p in request["messages"][-1]["content"] if p["type"] == "text")
    assert len(decision["specialists"]) == 2
    finding = r"The diagnosis of specialist model (\d+) is ([^(]+) \(probability (\d\.\d\d)\)\."
    blocks = re.findall(finding, prompt)
    assert [number for number, _, _ in blocks] == ["1", "2"]
    assert sorted((label, probability) for _, label, probability in blocks) == sorted(
        (s["label"], f"{s['probability']:.2f}") for s in decision["specialists"]
    )
    assert prompt.count("The diagnoses of the most similar cases it retrieved are ") == 2

    # and the audit trail records who asked, on which image, with which models
    (entry,) = entries
    assert entry["action"] == "report" and entry["actor"].startswith("clinician:dr-who#")
    assert entry["task_id"] == hub.task
    assert entry["image_sha256"] == hashlib.sha256(image).hexdigest()
    assert sorted((m["name"], m["version"], m["digest"]) for m in entry["models"]) == served
