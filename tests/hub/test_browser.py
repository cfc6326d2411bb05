"""The clinicians' page end to end in headless Chromium against the real service on loopback.

Sign in with a clinician token, choose the task, upload a real held-out image (PneumoniaMNIST
``val`` from ``../shared/data``, generated pixels when the folder is missing), read the answer,
override it, and find the review in the audit trail through the admin API.

Playwright drives Debian's ``/usr/bin/chromium`` (never a downloaded browser). With
``GSCO_HUB_SCREENSHOTS=DIR`` the page is also saved there as PNGs (``docs/img/`` keeps them); the
screenshots then use a generated image, since no image of ``../shared/data`` may enter the repository.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.gsco_runtime.world import LABELS
from tests.hub.service.conftest import Hub

CHROMIUM = Path("/usr/bin/chromium")
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "pneumoniamnist_dev.npz"
SHOTS = os.environ.get("GSCO_HUB_SCREENSHOTS")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.is_file(), reason="Debian chromium is not installed (.ci/run installs it)"
    ),
]


def query_png(folder: Path) -> tuple[Path, str]:
    """A held-out image as a PNG file, and which data it came from."""
    path = folder / "query.png"
    if SHARED.is_file() and not SHOTS:
        with np.load(SHARED, allow_pickle=False) as data:
            Image.fromarray(data["val_images"][0]).save(path)
        return path, "real: pneumoniamnist_dev.npz val_images[0]"
    yy, xx = np.mgrid[0:28, 0:28]
    pixels = (128 + 100 * np.sin(xx / 4.0) * np.cos(yy / 5.0)).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path, "generated (../shared/data absent or screenshots requested)"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def shot(page: object, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / name), full_page=True)


def sign_in(page: object, hub: Hub, token: str) -> None:
    page.goto(hub.url + "/")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_diagnose_override_and_audit(hub: Hub, page: object, tmp_path: Path) -> None:
    image, source = query_png(tmp_path)
    print(f"query image: {source}")
    page.goto(hub.url + "/")
    page.get_by_label("Access token").fill(hub.clinician)
    # the sign-in screen, not yet the task choice: this is what clinician-sign-in.png must show
    assert page.get_by_role("button", name="Sign in").is_visible()
    assert page.locator("#ask").is_hidden()
    shot(page, "clinician-sign-in.png")
    page.get_by_role("button", name="Sign in").click()
    page.locator("#ask").wait_for(state="visible")
    assert page.get_by_role("button", name="Sign in").is_hidden()
    page.get_by_label("Task").select_option(hub.task)
    assert page.locator("#task-info").inner_text() == "Labels: normal, pneumonia. Serving 2 specialist(s)."
    # The token lives in this tab's sessionStorage only, never in the address.
    assert hub.clinician not in page.url
    assert page.evaluate("sessionStorage.getItem('gsco-hub-token')") == hub.clinician

    page.locator("#image").set_input_files(str(image))
    assert page.locator("#preview-img").is_visible()
    page.get_by_role("button", name="Diagnose").click()
    page.locator("#answer").wait_for(state="visible")
    page.locator("#cases img[src^='blob:']").first.wait_for()

    decision_id = page.locator("#decision-id").inner_text()
    with hub.client(hub.clinician) as client:
        stored = client.get(f"/v1/diagnoses/{decision_id}").json()
        again = client.post(
            "/v1/diagnoses",
            data={"task_id": hub.task},
            files={"image": ("q.png", image.read_bytes(), "image/png")},
        ).json()
    assert again["label"] == stored["label"]  # the service answers the same image the same way
    assert page.locator("#result-label").inner_text() == stored["label"]
    assert page.locator("#result-confidence").inner_text() == f"{100 * stored['confidence']:.1f} %"
    assert page.locator("#result-arbiter").inner_text() == stored["arbiter"] == "consensus (no generalist)"
    assert page.locator("#no-generalist").is_visible()
    assert (
        "Decision support, not for use without clinician review"
        in page.locator("#answer-notice").inner_text()
    )
    assert page.locator("#models tr").count() == 2
    versions = {f"{s['model_name']} v{s['version']}" for s in stored["specialists"]}
    caption = page.locator("#votes-caption").inner_text()
    assert all(v in caption for v in versions)
    assert page.locator("#votes svg rect").count() == 2 * len(LABELS)
    assert page.locator("#cases li").count() == len(stored["similar_cases"]) == 10
    first = stored["similar_cases"][0]
    assert page.locator("#cases figcaption").first.inner_text() == (
        f"{first['label']}, similarity {first['similarity']:.3f}"
    )
    shot(page, "clinician-answer.png")

    other = next(label for label in LABELS if label != stored["label"])
    page.get_by_label("Label if you override").select_option(other)
    page.get_by_label("Comment (optional, no patient identifiers)").fill("browser e2e override")
    page.get_by_role("button", name="Override with chosen label").click()
    status = page.locator("#review-status")
    status.filter(has_text="Overridden").wait_for()
    assert status.inner_text() == f"Overridden: {other}. Recorded in the audit trail."
    shot(page, "clinician-review.png")

    with hub.client(hub.admin) as client:
        entries = client.get("/v1/audit", params={"limit": 1000}).json()["entries"]
    reviews = [e for e in entries if e["review"] and e["decision"]["id"] == decision_id]
    assert len(reviews) == 1
    review = reviews[0]["review"]
    assert (review["action"], review["label"], review["ai_label"]) == ("override", other, stored["label"])
    assert review["comment"] == "browser e2e override"
    assert reviews[0]["actor"] == "clinician:dr-who#1"


def test_errors_from_the_api_are_shown(hub: Hub, page: object, tmp_path: Path) -> None:
    sign_in(page, hub, "not-a-token")
    alert = page.get_by_role("alert")
    alert.wait_for()
    with httpx.Client(base_url=hub.url) as client:
        refused = client.get("/v1/tasks", headers={"Authorization": "Bearer not-a-token"}).json()["error"]
    assert alert.inner_text() == f"{refused['message']} ({refused['code']})"
    assert page.get_by_label("Access token").is_visible()
    assert page.evaluate("sessionStorage.getItem('gsco-hub-token')") is None

    sign_in(page, hub, hub.clinician)
    page.locator("#ask").wait_for(state="visible")
    dicom = tmp_path / "no-pixels.dcm"
    dicom.write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 64)
    page.locator("#image").set_input_files(str(dicom))
    assert page.locator("#preview-none").inner_text() == "DICOM file, no preview"
    assert not page.locator("#preview-img").is_visible()
    page.get_by_role("button", name="Diagnose").click()
    page.locator("#error:not([hidden])").wait_for()
    with hub.client(hub.clinician) as client:
        api = client.post(
            "/v1/diagnoses", data={"task_id": hub.task}, files={"image": ("x.dcm", dicom.read_bytes())}
        ).json()["error"]
    assert api["code"].startswith("GSCO-8")
    assert alert.inner_text() == f"{api['message']} ({api['code']})"
    assert page.locator("#answer").is_hidden()
