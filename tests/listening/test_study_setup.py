"""Creating a study renders blinded, loudness-matched stimuli once and creates quota items."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from listening.exceptions import StudySetupError
from listening.models import Item, Stimulus, Study

pytestmark = pytest.mark.django_db


def riff_chunks(data: bytes) -> list[str]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    chunks, offset = [], 12
    while offset < len(data):
        name, size = struct.unpack("<4sI", data[offset:offset + 8])
        chunks.append(name.decode())
        offset += 8 + size + (size & 1)
    return chunks


def test_stimuli_are_equal_length_loudness_matched_and_bare(make_study, media_root):
    study = make_study()
    stimuli = list(study.stimuli.all())
    # Only compared systems are rendered, plus two catch variants of the reference per excerpt.
    assert {s.system for s in stimuli} == {"three-stage", "ground-truth", "random"}
    assert sorted({s.variant for s in stimuli}) == ["", "half-beat-shift", "tritone"]
    assert all(s.system == "ground-truth" for s in stimuli if s.variant)
    for excerpt in ("track0", "track1"):
        group = [s for s in stimuli if s.excerpt == excerpt]
        assert len(group) == 5
        assert len({s.n_bytes for s in group}) == 1
    meter = pyloudnorm.Meter(study.sample_rate_hz)
    for stimulus in stimuli:
        path = Path(media_root) / stimulus.file_name
        data = path.read_bytes()
        assert riff_chunks(data) == ["fmt ", "data"]
        audio, rate = sf.read(path)
        assert rate == study.sample_rate_hz and audio.shape[1] == 2
        assert abs(meter.integrated_loudness(audio) - study.target_lufs) < 0.5
        # Opaque names: nothing of the excerpt, system or study in the path.
        for word in (stimulus.system, stimulus.excerpt, "ground", "stage", "random", "track"):
            assert word not in stimulus.file_name


def test_items_follow_the_design(make_study):
    study = make_study(quota_per_pair=7, rating_quota_per_clip=4)
    prefs = Item.objects.filter(study=study, kind=Item.Kind.PREFERENCE)
    assert prefs.count() == 2 * 2  # excerpts x comparisons
    assert {i.quota for i in prefs} == {7}
    assert {(i.stimulus_a.system, i.stimulus_b.system) for i in prefs} == {
        ("three-stage", "ground-truth"), ("three-stage", "random")}
    ratings = Item.objects.filter(study=study, kind=Item.Kind.RATING)
    assert ratings.count() == 2 * 3 and {i.quota for i in ratings} == {4}
    assert study.attributes == ["rhythmic alignment", "harmonic compatibility", "overall coherence"]


def test_no_attributes_means_no_rating_trials(make_study):
    study = make_study(attributes=[], catch_rate=0.0)
    assert not Item.objects.filter(study=study, kind=Item.Kind.RATING).exists()
    assert study.rating_trials == 0
    assert not Stimulus.objects.filter(study=study).exclude(variant="").exists()


def test_mixes_really_contain_vocal_and_accompaniment(make_study, media_root, clip_entries):
    study = make_study(catch_rate=0.0)
    a, b = (Stimulus.objects.get(study=study, excerpt="track0", system=s) for s in ("ground-truth", "random"))
    clip_a, _ = sf.read(Path(media_root) / a.file_name)
    clip_b, _ = sf.read(Path(media_root) / b.file_name)
    vocal, _ = sf.read(clip_entries[0]["vocal_path"])
    n = clip_a.shape[0]
    # The vocal is common to both mixes: both correlate with it clearly.
    for clip in (clip_a, clip_b):
        assert np.corrcoef(clip[:, 0], vocal[:n])[0, 1] > 0.3
    assert np.corrcoef(clip_a[:, 0], clip_b[:, 0])[0, 1] < 0.99


@pytest.mark.parametrize("overrides, message", [
    ({"comparisons": [("three-stage", "missing-system")]}, "no clip for system 'missing-system'"),
    ({"comparisons": [("random", "random")]}, "with itself"),
    ({"completion_code": " "}, "completion code"),
    ({"catch_rate": 0.9}, "catch_rate"),
    ({"quota_per_pair": 0}, "quota_per_pair"),
    ({"comparisons": []}, "at least one comparison"),
])
def test_bad_designs_are_refused_with_a_clear_message(make_study, media_root, overrides, message):
    with pytest.raises(StudySetupError, match=message):
        make_study(**overrides)
    assert not Study.objects.exists()
    assert not list(Path(media_root).rglob("*.wav"))


def test_duplicate_name_is_refused(make_study):
    make_study(name="same")
    with pytest.raises(StudySetupError, match="already exists"):
        make_study(name="same")


def test_unreadable_clip_names_the_file(make_study, tmp_path, clip_entries):
    from hafm_core.errors import AudioDecodeError

    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio")
    entries = [dict(e) for e in clip_entries]
    entries[0]["accompaniment_path"] = str(broken)  # three-stage of track0
    with pytest.raises(AudioDecodeError, match="broken.wav"):
        make_study(stimuli=entries)
