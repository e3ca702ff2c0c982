"""Blinding (nothing names a system), audio tokens, byte ranges, CSRF and staff-only pages."""

from __future__ import annotations

import re
import struct

import pytest
from django.test import Client

from listening.delivery import MAX_PAD_S
from listening.models import Stimulus, Trial
from tests.listening.listener_client import Listener

pytestmark = pytest.mark.django_db


def secrets_of(study) -> list[bytes]:
    """Strings a listener must never see: systems, excerpts, study name, stimulus ids, file names."""
    words = {study.name, "three-stage", "two-stage", "ground-truth", "random", "stage", "track0", "track1",
             "half-beat", "tritone", "catch"}
    for stimulus in Stimulus.objects.filter(study=study):
        words |= {str(stimulus.public_id), stimulus.file_name.rsplit("/", 1)[-1], stimulus.sha256,
                  stimulus.source_accompaniment}
    return [w.encode() for w in words if w]


def assert_blind(content: bytes, study, where: str):
    lowered = content.lower()
    for word in secrets_of(study):
        assert word.lower() not in lowered, f"{word!r} leaks in {where}"


def walk_study(study) -> tuple[Listener, list[tuple[str, bytes]]]:
    """Complete a study and keep every page, API reply and audio URL seen on the way."""
    listener = Listener(study)
    seen = [("landing", listener.client.get(listener.base).content)]
    listener.consent()
    seen.append(("screening", listener.client.get(listener.base + "screening/").content))
    listener.pass_screening()
    seen.append(("instructions", listener.client.get(listener.base + "instructions/").content))
    listener.practice()
    while True:
        page = listener.client.get(listener.base + "trial/")
        if page.status_code != 200:
            break
        seen.append(("trial page", page.content))
        reply = listener.client.get(listener.base + "api/next")
        seen.append(("api/next", reply.content))
        trial = reply.json()["trial"]
        for url in trial["audio"].values():
            seen.append(("audio url", url.encode()))
        listener.play(trial)
        answer = listener.answer(trial)
        seen.append(("answer reply", answer.content))
    seen.append(("done", listener.client.get(listener.base + "done/").content))
    return listener, seen


def test_nothing_a_listener_receives_names_a_system(make_study):
    study = make_study(name="three-stage vs ground-truth pilot", catch_rate=0.5, preference_trials=6)
    listener, seen = walk_study(study)
    assert any(where == "trial page" for where, _ in seen)
    for where, content in seen:
        assert_blind(content, study, where)
    # Catch trials look like any other trial to the listener.
    kinds = set(Trial.objects.filter(participant=listener.participant).values_list("kind", flat=True))
    assert {"catch_manipulated", "catch_repeat"} & kinds


def test_audio_headers_and_bytes_give_nothing_away(make_study):
    study = make_study(screening=False)
    listener = Listener(study)
    listener.consent()
    listener.practice()
    trial = listener.next()["trial"]
    sizes = set()
    for url in trial["audio"].values():
        response = listener.client.get(url)
        assert response.status_code == 200 and response["Content-Type"] == "audio/wav"
        assert response["Accept-Ranges"] == "bytes"
        headers = " ".join(f"{k}: {v}" for k, v in response.items()).lower()
        assert_blind(headers.encode(), study, "audio headers")
        for name in ("content-disposition", "last-modified", "etag"):
            assert name not in {k.lower() for k in response.headers}
        body = response.content
        assert_blind(body[:64], study, "wav header")
        chunks, offset = [], 12
        while offset < len(body):
            name, size = struct.unpack("<4sI", body[offset:offset + 8])
            chunks.append(name)
            offset += 8 + size
        assert chunks == [b"fmt ", b"data"]  # no LIST/INFO, id3 or bext metadata
        sizes.add(len(body))
    # Both clips of a pair come from clips of one length, each delivery padded at random
    # (listening.delivery), so size says nothing about the side or the system.
    stored = {s.n_bytes for s in study.stimuli.filter(excerpt=Trial.objects.get(public_id=trial["id"])
                                                      .stimulus_left.excerpt)}
    assert len(stored) == 1
    (stored_bytes,) = stored
    max_padding_bytes = 2 * 4 * MAX_PAD_S * study.sample_rate_hz  # two ends, 4 bytes per stereo frame
    assert all(0 < size - stored_bytes <= max_padding_bytes for size in sizes), (sizes, stored_bytes)


def test_audio_supports_byte_ranges(make_study):
    study = make_study(screening=False)
    listener = Listener(study)
    listener.consent()
    trial = listener.trial_data(listener.client.get(listener.base + "instructions/"))
    url = trial["audio"]["left"]
    full = listener.client.get(url).content
    part = listener.client.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == full[100:200]
    assert part["Content-Range"] == f"bytes 100-199/{len(full)}" and part["Content-Length"] == "100"
    tail = listener.client.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == full[-10:]
    open_end = listener.client.get(url, headers={"Range": f"bytes={len(full) - 5}-"})
    assert open_end.content == full[-5:]
    beyond = listener.client.get(url, headers={"Range": f"bytes={len(full)}-"})
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{len(full)}"


def test_audio_tokens_are_refused_to_anyone_else(make_study, settings):
    study = make_study(screening=False)
    listener = Listener(study)
    listener.consent()
    url = listener.trial_data(listener.client.get(listener.base + "instructions/"))["audio"]["left"]
    assert listener.client.get(url).status_code == 200
    assert Client().get(url).status_code == 403  # no session
    other = Listener(study)
    other.consent()
    assert other.client.get(url).status_code == 403  # another listener's session
    token = url.rsplit("/", 1)[1]
    forged = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    assert listener.client.get(url.replace(token, forged)).status_code == 403
    study.token_max_age_s = 0
    study.save()
    import time

    time.sleep(1.1)
    response = listener.client.get(url)
    assert response.status_code == 403 and b"expired" in response.content


def test_screening_audio_is_a_huggins_stimulus(make_study):
    import io

    import numpy as np
    import soundfile as sf

    from listening.models import ScreeningTrial

    study = make_study()
    listener = Listener(study)
    listener.consent()
    page = listener.client.get(listener.base + "screening/")
    url = re.search(rb'src="(/listen/audio/[^"]+)"', page.content).group(1).decode()
    audio, rate = sf.read(io.BytesIO(listener.client.get(url).content))
    assert audio.shape[1] == 2 and rate == 44_100
    target = ScreeningTrial.objects.filter(participant=listener.participant).order_by("index").first().target
    # No burst is diotic (a script would read the target from that: test_screening_stimuli.py);
    # the target is the one whose ears are in antiphase in the narrow band around 600 Hz.
    from tests.listening.test_screening_stimuli import band_phase_flip, bursts

    flips = [band_phase_flip(b) for b in bursts(audio.T)]
    assert int(np.argmax(flips)) + 1 == target and sorted(flips)[-1] > 2.5 > sorted(flips)[-2]
    for b in bursts(audio.T):
        assert not np.allclose(b[0], b[1], atol=2 / 32768)


def test_posts_need_a_csrf_token(make_study):
    study = make_study(screening=False)
    client = Client(enforce_csrf_checks=True)
    assert client.post(f"/listen/s/{study.public_id}/", {"consent": "yes"}).status_code == 403
    page = client.get(f"/listen/s/{study.public_id}/")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1).decode()
    assert client.post(f"/listen/s/{study.public_id}/", {"consent": "yes", "csrfmiddlewaretoken": token}
                       ).status_code == 302
    listener = Listener(study, client=client)
    trial = listener.trial_data(client.get(listener.base + "instructions/"))
    assert listener.post_json(trial["play_url"], {"side": "left", "event": "play"}).status_code == 403
    assert client.post(trial["play_url"], '{"side": "left", "event": "play"}', content_type="application/json",
                       headers={"X-CSRFToken": client.cookies["csrftoken"].value}).status_code == 204


def test_api_refuses_forged_and_foreign_answers(make_study):
    study = make_study(screening=False)
    owner, intruder = Listener(study), Listener(study)
    owner.consent()
    intruder.consent()
    trial = owner.trial_data(owner.client.get(owner.base + "instructions/"))
    owner.play(trial)
    forged = owner.post_json(trial["answer_url"], {"chosen": "left", "answer_key": "forged"})
    assert forged.status_code == 400 and forged.json()["error"] == "bad_key"
    foreign = intruder.post_json(trial["answer_url"], {"chosen": "left", "answer_key": trial["answer_key"]})
    assert foreign.status_code == 404 and foreign.json()["error"] == "unknown_trial"
    bad = owner.post_json(trial["answer_url"], {"chosen": "middle", "answer_key": trial["answer_key"]})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid"
    garbage = owner.client.post(trial["answer_url"], b"{not json", content_type="application/json")
    assert garbage.status_code == 400
    assert Client().post(trial["answer_url"], "{}", content_type="application/json").status_code == 403
    assert owner.answer(trial).status_code == 200


@pytest.mark.parametrize("path", ["staff/", "staff/new/"])
def test_staff_pages_need_staff(make_study, django_user_model, path):
    study = make_study()
    response = Client().get(f"/listen/{path}")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    user = django_user_model.objects.create_user("listener", password="pw-123456")
    client = Client()
    client.force_login(user)
    assert client.get(f"/listen/{path}").status_code == 302
    assert client.get(f"/listen/staff/{study.public_id}/export/preferences.csv").status_code == 302
    assert client.post(f"/listen/staff/{study.public_id}/status", {"status": "closed"}).status_code == 302
    study.refresh_from_db()
    assert study.status == "open"
