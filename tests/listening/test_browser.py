"""A listener takes a whole study in headless Chromium, by keyboard only, on a phone and a desktop.

Every step is done with keys (Tab, Enter, Space and the shortcuts), never a click, and each
is checked as a keyboard user would meet it: Enter and Space both activate buttons (Start,
the headphone check's answers, play/pause, the A/B switch, Next, "Stop and leave the study");
shortcuts work while focus is inside a player; the unticked consent's error takes focus and
describes the box; a player costs at most two Tab stops; the A/B switch keeps the playback
position (both clips on one clock); jumping to the end of a clip does not unlock its rating;
an answer the server refuses as too early keeps the choice, says so and is sent again once the
server's wait is over. Without JavaScript, consent and its error still work. Screenshots of
every page at both sizes go to test-artifacts/listening/.
"""

from __future__ import annotations

import json
import shutil
import time
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
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
CLIP_S = 2.0  # long enough to switch A/B mid-clip
PROLIFIC_STUB = "<h1>Prolific (stub)</h1>"
ANSWER_URL = "**/api/trials/*/answer"


@pytest.fixture
def chromium():
    """A fresh browser per test (Playwright's event loop must be gone before the database is flushed)."""
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        message = f"{CHROMIUM} is missing (apt-get install -y chromium)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def open_page(browser, size: str, javascript: bool = True):
    context = browser.new_context(viewport=VIEWPORTS[size], device_scale_factor=1, java_script_enabled=javascript)
    page = context.new_page()
    page.set_default_timeout(15_000)
    prolific_hits: list[str] = []
    page.route("https://app.prolific.com/**", lambda route: (
        prolific_hits.append(route.request.url),
        route.fulfill(status=200, content_type="text/html", body=PROLIFIC_STUB)))
    return page, prolific_hits


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


def snap(page, size: str, name: str) -> None:
    if page.locator("#player").count() and page.evaluate("!!window.ListenPlayer"):
        page.wait_for_selector("#player.ready", state="attached")
    fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert fits, f"{name} scrolls sideways on a {VIEWPORTS[size]['width']} px wide screen"
    page.screenshot(path=str(ARTIFACTS / f"{size}-{name}.png"), full_page=True)


# ---- keyboard helpers --------------------------------------------------------------------------

PROBE_FOCUS = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  if (!e.dataset.probe) e.dataset.probe = String(Math.random());
  return {probe: e.dataset.probe, player: !!e.closest('.player'), id: e.id, tag: e.tagName,
          name: e.getAttribute('aria-label') || e.textContent.trim().slice(0, 40)};
}"""


def focused(page) -> dict | None:
    return page.evaluate(PROBE_FOCUS)


def focus_lands_on(page, element_id: str) -> None:
    """Wait until focus is on `element_id`: a browser applies autofocus at its next rendering
    update, which may come after the load event that ends a navigation (seen on a busy CI host)."""
    try:
        page.wait_for_function("(id) => document.activeElement && document.activeElement.id === id",
                               arg=element_id, polling=100, timeout=10_000)
    except Exception as error:
        raise AssertionError(f"focus never reached #{element_id}; it is on {focused(page)}") from error


def tab_to(page, selector: str, limit: int = 40) -> None:
    """Press Tab until the focused element matches `selector`."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => !!document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}; stopped at {focused(page)}")


def tab_stops(page) -> list[dict]:
    """Every Tab stop of the page once round (from wherever focus is)."""
    stops: list[dict] = []
    seen: set[str] = set()
    for _ in range(60):
        page.keyboard.press("Tab")
        stop = focused(page)
        if stop is None:
            continue
        if stop["probe"] in seen:
            return stops
        seen.add(stop["probe"])
        stops.append(stop)
    raise AssertionError(f"focus never came round: {stops}")


def player_tab_stops(page) -> int:
    return sum(stop["player"] for stop in tab_stops(page))


def press(page, key: str) -> None:
    page.keyboard.press("Space" if key == " " else key)


PLAYER_STATE = """() => {
  const state = {};
  for (const a of document.querySelectorAll('#player audio')) {
    state[a.dataset.side] = {t: a.currentTime, muted: a.muted, paused: a.paused, duration: a.duration};
  }
  state.wall = performance.now() / 1000;
  const bar = document.querySelector('#player [role=progressbar]');
  state.valuenow = parseFloat(bar.getAttribute('aria-valuenow'));
  state.valuemax = parseFloat(bar.getAttribute('aria-valuemax'));
  return state;
}"""


def player(page) -> dict:
    return page.evaluate(PLAYER_STATE)


def wait_playing(page, side: str = "left") -> None:
    page.wait_for_function(
        "(s) => { const a = document.querySelector(`#player audio[data-side=${s}]`);"
        " return a && !a.paused && !a.muted && a.currentTime > 0.05; }", arg=side)


def trial_data(page) -> dict:
    return page.evaluate("JSON.parse(document.getElementById('trial-data').textContent)")


def is_answer(response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/answer")


def send_answer(page, key: str = "Enter") -> None:
    """Press `key` to send the answer; if the server says to wait, wait and send again."""
    with page.expect_navigation(timeout=30_000):
        for _ in range(8):
            with page.expect_response(is_answer) as reply:
                press(page, key)
            response = reply.value
            if response.status == 200:
                return
            body = response.json()
            assert "retry_after_ms" in body, f"answer refused: {body}"
            page.wait_for_selector("#submit:not([disabled])", timeout=body["retry_after_ms"] + 10_000)
            key = "Enter"
        raise AssertionError("the answer was refused eight times")


# ---- the journey -------------------------------------------------------------------------------

def consent_by_keyboard(page, size: str, keys: tuple[str, str]) -> None:
    """Start without ticking: the error takes focus and describes the box; then tick and start."""
    tab_to(page, "#start")
    press(page, keys[0])
    page.wait_for_selector("#consent-error:not([hidden])")
    assert focused(page)["id"] == "consent-error"
    assert "tick the box" in page.inner_text("#consent-error")
    box = page.locator("#consent")
    assert box.get_attribute("aria-invalid") == "true"
    assert "consent-error" in box.get_attribute("aria-describedby")
    assert "/screening/" not in page.url and "/instructions/" not in page.url
    snap(page, size, "1-landing-error")
    page.keyboard.press("Tab")
    assert focused(page)["id"] == "consent"
    page.keyboard.press("Space")
    assert box.is_checked()
    page.keyboard.press("Tab")
    assert focused(page)["id"] == "start"
    with page.expect_navigation():
        press(page, keys[1])


def screening_by_keyboard(page, size: str, keys: tuple[str, str]) -> None:
    for index in range(6):
        screening_id = page.input_value("input[name=screening]")
        target = in_thread(lambda sid=screening_id: ScreeningTrial.objects.get(public_id=sid).target)
        if index == 0:
            snap(page, size, "2-screening")
            assert player_tab_stops(page) == 1
            tab_to(page, "#player button.play")
            press(page, keys[0])            # the play button by Enter / Space
            wait_playing(page)
            page.keyboard.press("p")        # P with focus on the player: pause
            page.wait_for_function("document.querySelector('#player audio').paused")
            assert focused(page)["player"]
            page.keyboard.press("p")
            wait_playing(page)
        else:
            page.keyboard.press("p")
        page.wait_for_selector("button[name=answer]:not([disabled])")
        if index % 3 == 2:
            with page.expect_navigation():
                page.keyboard.press(str(target))  # the 1-3 shortcut
        else:
            tab_to(page, f"button[name=answer][value='{target}']")
            with page.expect_navigation():
                press(page, keys[index % 2])


def check_ab_switch(page) -> None:
    """B takes over at A's position on one shared clock, while A falls silent."""
    before = player(page)
    assert not before["left"]["muted"] and before["right"]["muted"]
    page.keyboard.press("b")
    page.wait_for_timeout(60)
    after = player(page)
    elapsed = after["wall"] - before["wall"]
    assert after["left"]["muted"] and not after["right"]["muted"] and not after["right"]["paused"]
    assert abs(after["right"]["t"] - after["left"]["t"]) < 0.25, after  # one clock for both
    assert before["left"]["t"] - 0.05 <= after["right"]["t"] <= before["left"]["t"] + elapsed + 0.25, (before, after)
    assert page.get_attribute("#player [data-side=right]", "aria-checked") == "true"


def practice_by_keyboard(page, size: str, keys: tuple[str, str]) -> None:
    """The practice pair: Tab stops, shortcuts inside the player, the A/B switch, Enter/Space."""
    snap(page, size, "3-instructions-practice")
    assert player_tab_stops(page) == 2  # play/pause and the A/B switch
    tab_to(page, "#player [role=radio][aria-checked=true]")
    page.keyboard.press("p")            # P inside the A/B switch starts playback
    wait_playing(page, "left")
    page.wait_for_selector("#player [data-side=left][data-heard]")  # A heard long enough
    check_ab_switch(page)
    assert focused(page)["name"] == "Clip B"  # focus follows the switch
    page.keyboard.press("p")
    page.wait_for_function("document.querySelector('#player audio[data-side=right]').paused")
    held = player(page)
    press(page, keys[1])                # Enter / Space on the checked switch: play B from where it stopped
    wait_playing(page, "right")
    assert player(page)["right"]["t"] >= held["right"]["t"] - 0.05
    page.keyboard.press("ArrowLeft")    # arrows move the switch: A at the same position
    page.wait_for_function("!document.querySelector('#player audio[data-side=left]').muted")
    assert focused(page)["name"] == "Clip A"
    page.keyboard.press("b")
    page.wait_for_selector("input[name=chosen]:not([disabled])")
    page.keyboard.press("2")            # a shortcut with focus in the player
    assert page.is_checked("input[name=chosen][value=right]")
    send_answer(page)


def pair_by_keyboard(page, key: str, next_key: str = "Enter") -> None:
    page.keyboard.press("p")
    page.wait_for_selector("#player [data-side=left][data-heard]")
    page.keyboard.press("b")
    page.wait_for_selector("input[name=chosen]:not([disabled])")
    page.keyboard.press(key)
    if next_key != "Enter":
        tab_to(page, "#submit")
    send_answer(page, next_key)


def refused_answer_is_kept(page, size: str) -> None:
    """The server says "too early, retry in 1.5 s": the choice stays, a message says so, and the
    answer can be sent again (only) once the wait is over."""
    answers: list[float] = []

    def refuse_first(route):
        answers.append(time.monotonic())
        if len(answers) == 1:
            route.fulfill(status=409, content_type="application/json", body=json.dumps({
                "error": "too_early", "code": "too_early", "message": "please listen to the clips before answering",
                "retry_after_ms": 1500, "next": ""}))
        else:
            route.continue_()

    page.route(ANSWER_URL, refuse_first)
    page.keyboard.press("p")
    page.wait_for_selector("#player [data-side=left][data-heard]")
    page.keyboard.press("b")
    page.wait_for_selector("input[name=chosen]:not([disabled])")
    page.keyboard.press("1")
    with page.expect_response(is_answer):
        page.keyboard.press("Enter")
    page.wait_for_selector("#error:not([hidden])")
    assert "keep listening" in page.inner_text("#error")
    assert page.is_checked("input[name=chosen][value=left]")
    assert page.is_disabled("#submit")
    snap(page, size, "4-pair-refused")
    page.keyboard.press("Enter")         # too soon: nothing is sent
    page.wait_for_timeout(300)
    assert len(answers) == 1
    page.wait_for_selector("#submit:not([disabled])", timeout=5_000)
    assert time.monotonic() - answers[0] >= 1.4
    assert page.is_checked("input[name=chosen][value=left]")
    send_answer(page)
    assert len(answers) >= 2
    page.unroute(ANSWER_URL)


def leave_button_answers_both_keys(page, keys: tuple[str, str]) -> None:
    """Enter and Space each send "Stop and leave the study" (held back here, so the journey goes on)."""
    sent: list[str] = []

    def hold_back(route):
        sent.append(route.request.method)
        route.fulfill(status=204)  # no content: the browser stays on this page

    page.route("**/leave/", hold_back)
    tab_to(page, "#leave")
    for count, key in enumerate(keys, 1):
        press(page, key)
        deadline = time.monotonic() + 5
        while len(sent) < count and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        assert sent == ["POST"] * count, f"{key!r} on the leave button sent {sent}"
    page.unroute("**/leave/")
    assert "/trial/" in page.url


def rating_by_keyboard(page, size: str, keys: tuple[str, str]) -> None:
    """Jumping to the end unlocks nothing; playing the whole clip does; 1-5 from inside the player."""
    snap(page, size, "5-rating-trial")
    assert player_tab_stops(page) == 1
    tab_to(page, "#player button.play")
    page.keyboard.press("p")
    wait_playing(page)
    for _ in range(8):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("() => { const a = document.querySelector('#player audio');"
                           " return a.paused && a.currentTime >= a.duration - 0.05; }")
    page.wait_for_timeout(400)
    state = player(page)
    assert state["valuenow"] == state["valuemax"] > 0
    assert "skipped" in page.inner_text("#hint")
    page.keyboard.press("4")
    assert page.locator("fieldset.scale input:not([disabled])").count() == 0
    assert page.locator("fieldset.scale input:checked").count() == 0
    assert page.is_disabled("#submit")
    trial_id = trial_data(page)["id"]
    assert in_thread(lambda: Trial.objects.get(public_id=trial_id).ended_left) == 0
    assert focused(page)["player"]
    press(page, keys[0])                # the play button again: from the start, to the end
    page.wait_for_selector("fieldset.scale input:not([disabled])", timeout=20_000)
    assert focused(page)["player"]
    for _ in page.query_selector_all("fieldset.scale"):
        page.keyboard.press("4")        # the first with focus still on the play button
    assert page.locator("fieldset.scale input:checked").count() == len(page.query_selector_all("fieldset.scale"))
    send_answer(page)


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_listener_completes_a_study_by_keyboard(chromium, size, live_server, make_study):
    keys = ("Enter", " ") if size == "phone" else (" ", "Enter")
    pid = {"phone": "5f1a2b3c4d5e6f708192a3b4", "desktop": "6a7b8c9d0e1f2a3b4c5d6e7f"}[size]
    study = in_thread(lambda: make_study(preference_trials=3, rating_trials=1, catch_rate=0, max_duration_s=CLIP_S))
    page, prolific_hits = open_page(chromium, size)

    page.goto(f"{live_server.url}/listen/s/{study.public_id}/?PROLIFIC_PID={pid}&STUDY_ID=st&SESSION_ID=se")
    snap(page, size, "1-landing")
    consent_by_keyboard(page, size, keys)

    page.wait_for_url("**/screening/")
    screening_by_keyboard(page, size, keys)

    page.wait_for_url("**/instructions/")
    practice_by_keyboard(page, size, keys)

    page.wait_for_url("**/trial/")
    snap(page, size, "4-pair-trial")
    refused_answer_is_kept(page, size)
    # An accidental reload in the middle: the same trial comes back, nothing is recorded twice.
    before = trial_data(page)["id"]
    page.reload()
    assert trial_data(page)["id"] == before
    assert in_thread(lambda: Trial.objects.filter(participant__external_id=pid, status="answered").count()) == 2
    leave_button_answers_both_keys(page, keys)
    n = 0
    while trial_data(page)["task"] == "pair":
        pair_by_keyboard(page, "12"[n % 2], next_key=keys[n % 2])
        n += 1
    rating_by_keyboard(page, size, keys)

    page.wait_for_url("**/done/")
    assert page.inner_text("#code") == "CODE123"
    snap(page, size, "6-done")
    if size == "desktop":  # a key stops the automatic return; Space on the button-like link returns
        tab_to(page, "#return-link")
        assert "when you are ready" in page.inner_text("#return-hint") and "/done/" in page.url
        page.keyboard.press("Space")
    page.wait_for_url("https://app.prolific.com/**", timeout=10_000)
    assert prolific_hits == ["https://app.prolific.com/submissions/complete?cc=CODE123"]
    in_thread(lambda: check_recorded(pid))


def check_recorded(pid: str) -> None:
    participant = Participant.objects.get(external_id=pid)
    assert participant.status == "completed" and participant.screening_passed
    answered = list(Trial.objects.filter(participant=participant, status="answered").exclude(kind="practice"))
    assert len(answered) == 4
    assert all(t.plays_left >= 1 for t in answered)
    assert all(t.plays_right >= 1 for t in answered if t.is_pair)
    assert all(t.ended_left >= 1 for t in answered if not t.is_pair)
    rated = [t for t in answered if not t.is_pair]
    assert len(rated) == 1 and rated[0].ratings.count() == 3


def test_consent_and_its_error_work_without_javascript(chromium, live_server, make_study):
    study = in_thread(lambda: make_study(max_duration_s=1.0))
    page, _ = open_page(chromium, "phone", javascript=False)
    page.goto(f"{live_server.url}/listen/s/{study.public_id}/")
    tab_to(page, "#start")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    focus_lands_on(page, "consent-error")  # autofocus on the server's error
    assert page.get_attribute("#consent", "aria-invalid") == "true"
    page.keyboard.press("Tab")
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    with page.expect_navigation():
        page.keyboard.press("Space")
    page.wait_for_url("**/screening/")
    assert "needs JavaScript" in page.inner_text("body")
    assert not page.is_visible("#player")  # no dead controls without the script
