"""Attack: break the study upload form with names, sizes and durations (#18 item 9).

A clip named without an extension, a file far over the size limit (it must not be spooled
whole before the check), a request announcing a huge body, a small FLAC holding minutes of
audio: each gives the form back with a clear error, never a 500, and no study.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import FileUploadHandler

from listening.models import Study

pytestmark = pytest.mark.django_db

RECEIVED = {"bytes": 0}


class SpyHandler(FileUploadHandler):
    """Sits after the limit handler and counts the bytes that reach storage."""

    def receive_data_chunk(self, raw_data, start):
        RECEIVED["bytes"] += len(raw_data)
        return raw_data

    def file_complete(self, file_size):
        return None


@pytest.fixture
def staff_client(client, django_user_model, settings):
    settings.FILE_UPLOAD_HANDLERS = ["tests.listening.test_study_uploads.SpyHandler",
                                     *settings.FILE_UPLOAD_HANDLERS]
    RECEIVED["bytes"] = 0
    user = django_user_model.objects.create_user("staff", password="pw-123456", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def post(client, files):
    return client.post("/listen/staff/new/", {
        "name": "upload attack", "clips": files, "comparisons": "a vs b", "quota_per_pair": 5,
        "rating_quota_per_clip": 0, "preference_trials": 3, "rating_trials": 0, "catch_rate": 0.0,
        "completion_code": "X"})


@pytest.mark.parametrize("name", ["x__vocal", "x__vocal.", "x__vocal.txt", ".wav", "x__.wav", "a__b__c.wav"])
def test_bad_names_give_a_form_error_naming_the_file(staff_client, clip_entries, name):
    wav = Path(clip_entries[0]["accompaniment_path"]).read_bytes()
    response = post(staff_client, [SimpleUploadedFile(name, wav), SimpleUploadedFile("x__a.wav", wav)])
    assert response.status_code == 200
    assert f"{name}: name clips".encode() in response.content
    assert not Study.objects.exists()


def test_a_file_over_the_size_limit_is_stopped_while_it_streams(staff_client, settings):
    settings.HAFM_UPLOAD_MAX_FILE_BYTES = 200_000
    big = SimpleUploadedFile("x__vocal.wav", b"\0" * 900_000)
    response = post(staff_client, [big])
    assert response.status_code == 413
    assert b"x__vocal.wav is over" in response.content and b"HAFM_UPLOAD_MAX_FILE_BYTES" in response.content
    assert RECEIVED["bytes"] <= settings.HAFM_UPLOAD_MAX_FILE_BYTES  # never stored past the limit
    assert not Study.objects.exists()


def test_a_request_announcing_too_much_is_not_read(staff_client, settings):
    settings.HAFM_UPLOAD_MAX_TOTAL_BYTES = 1000
    response = post(staff_client, [SimpleUploadedFile("x__vocal.wav", b"\0" * 1_200_000)])
    assert response.status_code == 413 and b"HAFM_UPLOAD_MAX_TOTAL_BYTES" in response.content
    assert RECEIVED["bytes"] == 0
    assert not Study.objects.exists()


def test_a_long_clip_is_refused_from_its_header(staff_client, settings, tmp_path):
    settings.HAFM_UPLOAD_MAX_DURATION_S = 60
    path = tmp_path / "long.flac"
    with sf.SoundFile(path, "w", samplerate=8000, channels=2, format="FLAC") as out:
        for _ in range(300):  # five minutes of near-silence: a few kilobytes
            out.write(np.zeros((8000, 2), dtype=np.float32))
    assert path.stat().st_size < 200_000
    short = tmp_path / "short.wav"
    sf.write(short, 0.1 * np.sin(np.arange(16_000) / 5.0), 16_000)
    response = post(staff_client, [SimpleUploadedFile("x__vocal.wav", short.read_bytes()),
                                   SimpleUploadedFile("x__a.flac", path.read_bytes()),
                                   SimpleUploadedFile("x__b.wav", short.read_bytes())])
    assert response.status_code == 200
    assert b"x__a.flac is 300 s long; clips may be at most 60 s" in response.content
    assert not Study.objects.exists()
