"""Datasets: layouts, splits, vocal-activity excerpts and the manifest."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from hafm_core.audio import read_audio, write_audio
from hafm_core.data.excerpts import choose_excerpts
from hafm_core.data.manifest import read_manifest
from hafm_core.data.prepare import PrepareConfig, prepare_dataset
from hafm_core.data.sources import musdb_tracks, stem_folder_tracks, synthetic_tracks
from hafm_core.data.splits import assign_splits
from hafm_core.errors import DatasetError, InvalidAudioError
from hafm_core.synth import synthesize_multitrack


def _write_stem_folder(folder, seed=0, duration_s=3.0, rate=22_050, silent_vocal=False, stems=None):
    track = synthesize_multitrack(seed, duration_s=duration_s, sample_rate_hz=rate)
    for name in stems or ("vocals", "drums", "bass", "other"):
        audio = track.stems[name] * (0 if silent_vocal and name == "vocals" else 1)
        write_audio(folder / f"{name}.wav", audio, rate)
    return track


def test_vocal_activity_threshold_picks_the_sung_part():
    rate = 16_000
    t = np.arange(rate * 6) / rate
    vocal = np.where(t >= 3.0, 0.1, 0.001) * np.sin(2 * np.pi * 220 * t)  # -23 dBFS vs -63 dBFS RMS
    spans = choose_excerpts(vocal.astype(np.float32), rate, duration_s=2.0, stride_s=1.0)
    assert [s.start_s for s in spans] == [2.0, 3.0, 4.0]  # >= 50 % of 100 ms windows above -40 dBFS
    assert spans[0].active_fraction == pytest.approx(0.5)


def test_assign_splits_is_by_name_and_covers_test():
    splits = assign_splits([f"t{i:02d}" for i in range(10)])
    assert [splits[f"t{i:02d}"] for i in range(10)] == ["train"] * 7 + ["validation"] + ["test"] * 2
    assert assign_splits(["only"]) == {"only": "train"}


def test_musdb_stem_mp4_layout_and_validation_split(tmp_path, stempeg_sample_path):
    for split, name in (("train", "Leaf - Summerghost"), ("train", "A - B"), ("test", "C - D")):
        (tmp_path / split).mkdir(exist_ok=True)
        shutil.copy(stempeg_sample_path, tmp_path / split / f"{name}.stem.mp4")
    tracks = {t.name: t.split for t in musdb_tracks(tmp_path)}
    assert tracks == {"Leaf - Summerghost": "validation", "A - B": "train", "C - D": "test"}


def test_musdb_hq_layout_prepares_24khz_excerpts(tmp_path):
    _write_stem_folder(tmp_path / "musdb" / "train" / "Triviul - Angelsaint", seed=1)
    _write_stem_folder(tmp_path / "musdb" / "test" / "Some - Song", seed=2)
    tracks = musdb_tracks(tmp_path / "musdb")
    result = prepare_dataset(tracks, tmp_path / "out", PrepareConfig(excerpt_s=2.0))
    records = read_manifest(result.manifest_path)
    assert {r.split for r in records} == {"validation", "test"}
    for record in records:
        vocal, rate = read_audio(record.vocal_file(tmp_path / "out"))
        accompaniment, _ = read_audio(record.accompaniment_file(tmp_path / "out"))
        assert rate == 24_000 and len(vocal) == len(accompaniment) == 48_000
        assert record.duration_s == 2.0 and record.start_s * 25 == int(record.start_s * 25)


def test_accompaniment_is_drums_plus_bass_plus_other(tmp_path):
    track = _write_stem_folder(tmp_path / "stems" / "song", seed=3, rate=24_000)
    result = prepare_dataset(stem_folder_tracks(tmp_path / "stems"), tmp_path / "out",
                             PrepareConfig(excerpt_s=2.0, max_excerpts_per_track=1))
    record = read_manifest(result.manifest_path)[0]
    accompaniment, _ = read_audio(record.accompaniment_file(tmp_path / "out"))
    start = int(record.start_s * 24_000)
    expected = (track.stems["drums"] + track.stems["bass"] + track.stems["other"])[start:start + 48_000]
    np.testing.assert_allclose(accompaniment, expected, atol=1e-6)


def test_dataset_without_stems_is_an_error_naming_the_path(tmp_path):
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(DatasetError, match=f"{tmp_path}/empty holds no stems"):
        musdb_tracks(tmp_path / "empty")
    with pytest.raises(DatasetError, match="no train/ or test/ folder"):
        musdb_tracks(tmp_path / "empty" / "train")
    with pytest.raises(DatasetError, match="is not a folder"):
        stem_folder_tracks(tmp_path / "missing")
    _write_stem_folder(tmp_path / "partial" / "song", stems=("vocals", "drums"))
    with pytest.raises(DatasetError, match="song holds vocals, drums but not bass, other"):
        stem_folder_tracks(tmp_path / "partial")


def test_silent_vocal_track_is_rejected_with_its_name(tmp_path):
    _write_stem_folder(tmp_path / "stems" / "instrumental", silent_vocal=True)
    with pytest.raises(InvalidAudioError, match="instrumental.*vocals.*all silent"):
        prepare_dataset(stem_folder_tracks(tmp_path / "stems"), tmp_path / "out", PrepareConfig(excerpt_s=2.0))


def test_manifest_is_deterministic_and_malformed_lines_are_named(tmp_path):
    tracks = synthetic_tracks(2, duration_s=2.5)
    a = prepare_dataset(tracks, tmp_path / "a", PrepareConfig(excerpt_s=2.0)).manifest_path
    b = prepare_dataset(tracks, tmp_path / "b", PrepareConfig(excerpt_s=2.0)).manifest_path
    assert a.read_text() == b.read_text()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(a.read_text().splitlines()[0] + "\n{not json\n")
    with pytest.raises(DatasetError, match="bad.jsonl:2: not JSON"):
        read_manifest(bad)
    bad.write_text(json.dumps({"track": "x"}) + "\n")
    with pytest.raises(DatasetError, match="bad.jsonl:1: record lacks"):
        read_manifest(bad)
