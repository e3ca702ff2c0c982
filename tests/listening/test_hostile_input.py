"""Hostile input never gives a 500, and no listener-facing error shows Django's debug page.

Run with DEBUG on (the `make demo` default), on SQLite and on PostgreSQL (which refuses NUL
bytes in text). Every answer must be a deliberate 2xx-4xx that names nothing of the study.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from listening.models import Participant, Trial
from tests.listening.conftest import prolific_id
from tests.listening.listener_client import Listener, fresh_address

pytestmark = pytest.mark.django_db

SECRET_NAME = "three-stage secret pilot"
LEAKS = [b"Traceback", b"DATABASES", b"SECRET_KEY", b"settings.py", b"Django", b"django.", b"Request Method",
         SECRET_NAME.encode(), b"three-stage", b"MEDIA_ROOT", b"psycopg", b"sqlite"]


@pytest.fixture
def debug_on(settings):
    settings.DEBUG = True
    return settings


def assert_plain(response, where: str, statuses=None):
    assert response.status_code < 500, f"{where}: {response.status_code}"
    if statuses is not None:
        assert response.status_code in statuses, f"{where}: {response.status_code}"
    body = response.content if not response.streaming else b""
    for leak in LEAKS:
        assert leak.lower() not in body.lower(), f"{where}: {leak!r} in the answer"


def client() -> Client:
    return Client(REMOTE_ADDR=fresh_address(), raise_request_exception=False)


def test_malformed_api_bodies_get_coded_4xx_answers(make_study, debug_on):
    study = make_study(name=SECRET_NAME, screening=False)
    listener = Listener(study, client=client())
    listener.consent()
    trial = listener.trial_data(listener.client.get(listener.base + "instructions/"))
    media = str(debug_on.MEDIA_ROOT).encode()
    attacks = {
        "bad json": (b"{not json", "application/json", 400),
        "nested arrays": (b"[" * 7000 + b"]" * 7000, "application/json", 400),  # deeper than the
        "nested objects": (b'{"a":' * 2500 + b"1" + b"}" * 2500, "application/json", 400),  # recursion limit
        "5000-digit number": (b'{"response_time_ms": 1' + b"0" * 5000 + b"}", "application/json", 400),
        "not utf-8": (b'{"chosen": "\xff\xfe"}', "application/json", 400),
        "a json array": (b"[1, 2]", "application/json", 400),
        "text/plain": (json.dumps({"chosen": "left"}).encode(), "text/plain", 415),
        "form-encoded": (b"chosen=left", "application/x-www-form-urlencoded", 415),
        "20 kB": (json.dumps({"chosen": "left", "pad": "x" * 20_000}).encode(), "application/json", 413),
        "3 MB": (b'{"pad": "' + b"x" * 3_000_000 + b'"}', "application/json", 413),
        "key is a list": (json.dumps({"chosen": "left", "answer_key": ["x"]}).encode(), "application/json", 400),
        "key with NUL": (json.dumps({"chosen": "left", "answer_key": "\x00"}).encode(), "application/json", 400),
        "choice is an object": (json.dumps({"chosen": {"$gt": ""}, "answer_key": trial["answer_key"]}).encode(),
                                "application/json", 400),
        "ratings are a list": (json.dumps({"ratings": [1, 2], "answer_key": trial["answer_key"]}).encode(),
                               "application/json", 400),
    }
    for where, (body, content_type, status) in attacks.items():
        for url in (trial["answer_url"], trial["play_url"]):
            response = listener.client.post(url, body, content_type=content_type)
            assert_plain(response, f"{where} -> {url}", {status, 409} if where.startswith(("key", "choice",
                                                                                            "ratings")) else {status})
            assert media not in response.content
            assert response["Content-Type"] == "application/json" and "code" in response.json()
    for side in ("\x00", "left\x00", "x" * 10_000):
        response = listener.post_json(trial["play_url"], {"side": side, "event": "play"})
        assert_plain(response, f"play side {side[:8]!r}", {400})
    assert Trial.objects.get(public_id=trial["id"]).status == "leased"  # nothing was recorded
    listener.play(trial)
    assert listener.answer(trial).status_code == 200  # and the real answer still goes through


def test_nul_bytes_and_junk_in_url_parameters(make_study, debug_on):
    study = make_study(name=SECRET_NAME)
    for params in ({"PROLIFIC_PID": "\x00"}, {"PROLIFIC_PID": prolific_id("a")[:23] + "\x00"},
                   {"PROLIFIC_PID": prolific_id("b"), "STUDY_ID": "\x00x", "SESSION_ID": "se\x00"},
                   {"PROLIFIC_PID": "x" * 100_000}, {"consent": "\x00"}):
        browser = client()
        base = f"/listen/s/{study.public_id}/"
        assert_plain(browser.get(base, params), f"GET {params!r:.40}", {200})
        assert_plain(browser.post(base, {"consent": "yes", **params}), f"POST {params!r:.40}", {200, 302})
    for query in ("PROLIFIC_PID=%ED%A0%80", "PROLIFIC_PID=%ff%00", "STUDY_ID=%00&PROLIFIC_PID=%C0%80"):
        assert_plain(client().get(f"/listen/s/{study.public_id}/?{query}"), query, {200})
    stored = Participant.objects.get(external_id=prolific_id("b"))
    assert (stored.platform_study_id, stored.platform_session_id) == ("x", "se")  # NULs dropped, rest kept
    assert Participant.objects.filter(study=study).count() == 1  # malformed ids started nothing


def test_screening_answers_with_bad_ids_and_numbers(make_study, debug_on):
    study = make_study(name=SECRET_NAME)
    listener = Listener(study, client=client())
    listener.consent()
    url = listener.base + "screening/"
    for form in ({"screening": "not-a-uuid", "answer": "1"}, {"screening": "\x00", "answer": "1"},
                 {"screening": "1' OR '1'='1", "answer": "2"}, {"screening": "9" * 5000, "answer": "1"},
                 {"answer": "1" * 5000}, {"answer": "\x00"}, {"screening": ["a", "b"], "answer": "x"}, {}):
        assert_plain(listener.client.post(url, form), f"screening {form!r:.40}", {302})
    assert not listener.participant.screening_trials.filter(answer__isnull=False).exists()


def test_bad_paths_tokens_hosts_and_csrf_get_plain_pages(make_study, debug_on):
    study = make_study(name=SECRET_NAME, screening=False)
    browser = client()
    for path in ("/listen/s/not-a-uuid/", f"/listen/s/{study.public_id}/nothing", "/listen/zzz",
                 f"/listen/s/{study.public_id}/api/trials/zzz/answer", "/listen/audio/%00abc",
                 "/listen/audio/" + "a" * 5000, f"/listen/s/{study.public_id.hex}/"):
        assert_plain(browser.get(path), path, {403, 404})
        assert_plain(browser.post(path, "{}", content_type="application/json"), f"POST {path}", {403, 404, 405})
    missing = "/listen/s/00000000-0000-0000-0000-000000000000/"
    assert_plain(browser.get(missing), missing, {404})
    assert_plain(browser.post(f"/listen/s/{study.public_id}/trial/"), "POST to a GET page", {405})
    assert browser.get(f"/listen/s/{study.public_id}")["Location"].endswith("/")  # the slash redirect still works
    assert_plain(browser.get(f"/listen/s/{study.public_id}/", HTTP_HOST="evil.example"), "bad host", {400})
    strict = Client(enforce_csrf_checks=True, REMOTE_ADDR=fresh_address(), raise_request_exception=False)
    assert_plain(strict.post(f"/listen/s/{study.public_id}/", {"consent": "yes"}), "no csrf token", {403})
    huge = strict.post(f"/listen/s/{study.public_id}/", b"consent=yes&pad=" + b"x" * 3_000_000,
                       content_type="application/x-www-form-urlencoded")
    assert_plain(huge, "3 MB form before the CSRF check", {413})
    many = strict.post(f"/listen/s/{study.public_id}/", "&".join(f"f{k}=1" for k in range(2000)),
                       content_type="application/x-www-form-urlencoded")
    assert_plain(many, "2000 form fields", {400})
    assert not Participant.objects.filter(study=study).exists()


def test_an_unexpected_failure_is_logged_and_answered_plainly(make_study, debug_on, caplog):
    """A bug in a listener view (here: the database refusing a query) still shows no debug page."""
    from django.db import DataError, connection

    study = make_study(name=SECRET_NAME, screening=False)
    listener = Listener(study, client=client())
    listener.consent()

    def refuse(execute, sql, params, many, context):
        if "listening_trial" in sql:
            raise DataError("simulated failure near 'three-stage secret pilot'")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse):
        page = listener.client.get(listener.base + "instructions/")
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")
    assert_plain(type(page)(page.content), "failed page")  # the same body, judged as a 200 would be
    assert b"simulated" not in page.content.lower()
    assert any("simulated failure" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
