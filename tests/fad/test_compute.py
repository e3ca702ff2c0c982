"""compute_fad on folders of real audio files, and its errors for bad input."""

import numpy as np
import pytest

from hafm_core.errors import DatasetError, InvalidAudioError
from hafm_core.fad import TooFewFilesError
from hafm_core.fad.cache import EmbeddingCache
from hafm_core.fad.compute import compute_fad, embed_files
from hafm_core.fad.embedders import load_embedder
from hafm_core.fad.files import list_audio_files
from tests.fad.conftest import SAMPLE_RATE_HZ, accompaniment, write_set
from tests.fad.test_distance import reference_fad


@pytest.fixture(scope="module")
def logmel():
    return load_embedder("logmel", device="cpu")


def test_fad_of_folders_matches_a_reference_on_the_same_embeddings(audio_sets, logmel, tmp_path):
    report = compute_fad(audio_sets["background"], audio_sets["eval"], logmel, EmbeddingCache(tmp_path))
    bg = np.concatenate([f.embeddings for f in embed_files(list_audio_files(audio_sets["background"], "b"), logmel)])
    ev = np.concatenate([f.embeddings for f in embed_files(list_audio_files(audio_sets["eval"], "e"), logmel)])
    expected = reference_fad(bg.mean(0), np.cov(bg, rowvar=False), ev.mean(0), np.cov(ev, rowvar=False))
    assert report.fad == pytest.approx(expected, rel=1e-6)
    assert (report.n_background, report.n_eval) == (8, 8)
    assert report.n_background_frames == len(bg)
    assert (report.embedder, report.protocol) == ("logmel", "logmel-rp-v1")


def test_same_folder_is_zero_and_noise_makes_it_worse(audio_sets, logmel):
    same = compute_fad(audio_sets["eval"], audio_sets["eval"], logmel)
    clean = compute_fad(audio_sets["background"], audio_sets["eval"], logmel)
    noisy = compute_fad(audio_sets["background"], audio_sets["noisy"], logmel)
    assert same.fad == pytest.approx(0.0, abs=1e-8)
    assert noisy.fad > clean.fad > 0


def test_confidence_interval_and_fad_inf_are_reported(audio_sets, logmel):
    report = compute_fad(audio_sets["background"], audio_sets["eval"], logmel, with_ci=True,
                         with_fad_inf=True, seed=3)
    assert report.ci.low < report.fad < report.ci.high
    assert report.ci.estimate == pytest.approx(report.fad, rel=1e-7)
    assert report.ci_standard_error > 0
    assert report.fad_inf.sizes[-1] == 8 and report.fad_inf.seed == 3
    assert 0.0 <= report.fad_inf.r_squared <= 1.0


def test_missing_and_empty_folders_are_named(tmp_path, logmel, audio_sets):
    with pytest.raises(DatasetError, match=f"background folder {tmp_path / 'nope'} does not exist"):
        compute_fad(tmp_path / "nope", audio_sets["eval"], logmel)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no audio here")
    with pytest.raises(DatasetError, match=f"eval folder {tmp_path / 'empty'} holds no audio"):
        compute_fad(audio_sets["background"], tmp_path / "empty", logmel)


def test_a_single_file_is_too_few(tmp_path, logmel, audio_sets):
    one = write_set(tmp_path / "one", {"only": accompaniment(1)})
    with pytest.raises(TooFewFilesError, match=f"{one} holds 1 audio file"):
        compute_fad(audio_sets["background"], one, logmel)


def test_nan_audio_names_the_file(tmp_path, logmel, audio_sets):
    bad = accompaniment(2)
    bad[100:110] = np.nan
    folder = write_set(tmp_path / "nan", {"good": accompaniment(1), "broken": bad})
    with pytest.raises(InvalidAudioError, match="broken.wav: 10 samples are NaN"):
        compute_fad(audio_sets["background"], folder, logmel)


def test_audio_shorter_than_the_window_names_the_file(tmp_path, logmel, audio_sets):
    folder = write_set(tmp_path / "short", {"good": accompaniment(1),
                                            "tiny": accompaniment(2)[: SAMPLE_RATE_HZ // 2]})
    with pytest.raises(InvalidAudioError, match=r"tiny.wav: 0.50 s is shorter than the 0.975 s window"):
        compute_fad(audio_sets["background"], folder, logmel)
