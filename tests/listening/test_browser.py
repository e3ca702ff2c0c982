"""A listener takes a whole study in headless Chromium on a phone-sized screen.

Consent with Prolific parameters, the Huggins headphone check, the practice trial, pairs and
ratings answered with the keyboard, a reload in the middle (same trial, nothing counted
twice), and the redirect to Prolific with the completion code. Screenshots of every page go
to test-artifacts/listening/.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from listening.models import Participant, ScreeningTrial, Trial
from tests.conftest import IN_CI, ROOT

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-gpu",
                 "--autoplay-policy=no-user-gesture-required"]
ARTIFACTS = ROOT / "test-artifacts" / "listening"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def browser_page():
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        message = f"{CHROMIUM} is missing (apt-get install -y chromium)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport=PHONE, device_scale_factor=1)
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        browser.close()


def in_thread(read):
    """Run an ORM read off this thread: Playwright's event loop here makes Django refuse sync ORM calls."""
    from django.db import connections

    def run():
        try:
            return read()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def snap(page, name: str) -> None:
    fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert fits, f"{name} scrolls sideways on a {PHONE['width']} px wide screen"
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def trial_id(page) -> str:
    return page.evaluate("JSON.parse(document.getElementById('trial-data').textContent).id")


def answer_pair(page, key: str) -> None:
    page.keyboard.press("1")
    page.keyboard.press("2")
    page.wait_for_selector("input[name=chosen]:not([disabled])")
    page.keyboard.press(key)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def answer_rating(page) -> None:
    page.keyboard.press("p")
    page.wait_for_selector("fieldset.scale input:not([disabled])", timeout=20_000)  # after the clip ended
    for _ in page.query_selector_all("fieldset.scale"):
        page.keyboard.press("4")
    with page.expect_navigation():
        page.keyboard.press("Enter")


def test_listener_completes_a_study_in_chromium(browser_page, live_server, make_study):
    page = browser_page
    study = in_thread(lambda: make_study(preference_trials=4, rating_trials=1, catch_rate=0.25, max_duration_s=1.0))
    prolific_hits = []
    page.route("https://app.prolific.com/**", lambda route: (
        prolific_hits.append(route.request.url),
        route.fulfill(status=200, content_type="text/html", body="<h1>Prolific (stub)</h1>")))

    page.goto(f"{live_server.url}/listen/s/{study.public_id}/?PROLIFIC_PID=5f0c0ffee0ddba11b0a710ad&STUDY_ID=st&SESSION_ID=se")
    snap(page, "1-landing")
    page.get_by_label("I have read the above and agree to take part.").check()
    page.get_by_role("button", name="Start").click()

    page.wait_for_url("**/screening/")
    snap(page, "2-screening")
    for _ in range(6):
        screening_id = page.input_value("input[name=screening]")
        target = in_thread(lambda sid=screening_id: ScreeningTrial.objects.get(public_id=sid).target)
        page.keyboard.press("p")
        page.wait_for_selector("button[name=answer]:not([disabled])")
        with page.expect_navigation():
            page.get_by_role("button", name=f"Noise {target}").click()

    page.wait_for_url("**/instructions/")
    snap(page, "3-instructions-practice")
    answer_pair(page, "a")

    page.wait_for_url("**/trial/")
    snap(page, "4-pair-trial")
    answer_pair(page, "b")
    # An accidental reload in the middle: the same trial comes back, nothing is recorded twice.
    before = trial_id(page)
    page.reload()
    assert trial_id(page) == before
    assert in_thread(lambda: Trial.objects.filter(participant__external_id="5f0c0ffee0ddba11b0a710ad", status="answered").count()
                     ) == 2  # practice + 1
    while page.evaluate("JSON.parse(document.getElementById('trial-data').textContent).task") == "pair":
        answer_pair(page, "a")
    snap(page, "5-rating-trial")
    answer_rating(page)

    page.wait_for_url("**/done/")
    assert page.inner_text("#code") == "CODE123"
    snap(page, "6-done")
    page.wait_for_url("https://app.prolific.com/**", timeout=10_000)
    assert prolific_hits == ["https://app.prolific.com/submissions/complete?cc=CODE123"]

    in_thread(check_recorded)


def check_recorded() -> None:
    participant = Participant.objects.get(external_id="5f0c0ffee0ddba11b0a710ad")
    assert participant.status == "completed" and participant.screening_passed
    answered = list(Trial.objects.filter(participant=participant, status="answered").exclude(kind="practice"))
    assert len(answered) == 5
    assert all(t.plays_left >= 1 and t.response_time_ms > 0 for t in answered)
    assert all(t.plays_right >= 1 for t in answered if t.is_pair)
    assert all(t.ended_left >= 1 for t in answered if not t.is_pair)
    rated = [t for t in answered if not t.is_pair]
    assert len(rated) == 1 and rated[0].ratings.count() == 3

