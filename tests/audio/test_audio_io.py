"""Reading, checking, resampling and loudness of audio files, including every bad input."""

from __future__ import annotations

import subprocess
import warnings

import numpy as np
import pyloudnorm
import pytest
import soundfile

from hafm_core.audio import (
    ClippingWarning,
    check_audio,
    loudness_lufs,
    normalize_loudness,
    read_audio,
    read_stems,
    resample,
    write_audio,
)
from hafm_core.errors import AudioDecodeError, InvalidAudioError


def _tone(duration_s=1.0, rate=44_100, freq=440.0, amp=0.3, channels=1):
    t = np.arange(int(duration_s * rate)) / rate
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return x if channels == 1 else np.stack([x] * channels)


def test_wav_and_flac_round_trip_keep_layout(tmp_path):
    stereo = _tone(channels=2)
    stereo[1] *= 0.5
    write_audio(tmp_path / "a.wav", stereo, 44_100)
    samples, rate = read_audio(tmp_path / "a.wav", mono=False)
    assert rate == 44_100 and samples.shape == (2, 44_100) and samples.dtype == np.float32
    np.testing.assert_array_equal(samples, stereo)
    mono, _ = read_audio(tmp_path / "a.wav")
    np.testing.assert_allclose(mono, stereo.mean(axis=0), atol=1e-7)
    write_audio(tmp_path / "a.flac", stereo[0], 44_100)
    flac, _ = read_audio(tmp_path / "a.flac")
    np.testing.assert_allclose(flac, stereo[0], atol=2e-7 + 2**-23)


def test_write_is_atomic_no_temp_left(tmp_path):
    write_audio(tmp_path / "x.wav", _tone(), 16_000)
    assert [p.name for p in tmp_path.iterdir()] == ["x.wav"]


def test_mp3_is_decoded_with_ffmpeg_and_resampled(tmp_path, stempeg_sample_path):
    write_audio(tmp_path / "a.wav", _tone(duration_s=2.0), 44_100)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(tmp_path / "a.wav"), str(tmp_path / "a.mp3")],
                   check=True)
    samples, rate = read_audio(tmp_path / "a.mp3", sample_rate_hz=16_000)
    assert rate == 16_000 and abs(samples.shape[0] - 32_000) < 1_200
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) * 16_000 / len(samples) - 440.0) < 2.0


def test_stem_mp4_gives_five_musdb_streams(stempeg_sample_path):
    import stempeg

    stems, rate = read_stems(stempeg_sample_path)
    assert rate == 44_100 and list(stems) == ["mixture", "drums", "bass", "other", "vocals"]
    reference, _ = stempeg.read_stems(str(stempeg_sample_path))  # (5, n, 2), independent decoder
    n = min(reference.shape[1], stems["vocals"].shape[0])
    np.testing.assert_allclose(stems["vocals"][:n], reference[4, :n].mean(axis=1), atol=1e-3)
    mixture, _ = read_audio(stempeg_sample_path)  # stream 0
    np.testing.assert_allclose(mixture[:n], stems["mixture"][:n], atol=1e-6)


def test_resample_matches_length_and_keeps_a_tone():
    x = _tone(duration_s=1.0, rate=44_100, freq=1000.0)
    y = resample(x, 44_100, 24_000)
    assert y.shape == (24_000,) and y.dtype == np.float32
    assert abs(np.argmax(np.abs(np.fft.rfft(y))) - 1000) <= 1
    stereo = resample(_tone(rate=24_000, channels=2), 24_000, 16_000)
    assert stereo.shape == (2, 16_000)
    assert resample(x, 44_100, 44_100) is not None


def test_loudness_matches_pyloudnorm_and_normalises():
    x = _tone(duration_s=3.0, amp=0.1)
    reference = pyloudnorm.Meter(44_100).integrated_loudness(x.astype(np.float64))
    assert loudness_lufs(x, 44_100) == pytest.approx(reference, abs=1e-6)
    y = normalize_loudness(x, 44_100, target_lufs=-23.0)
    assert pyloudnorm.Meter(44_100).integrated_loudness(y.astype(np.float64)) == pytest.approx(-23.0, abs=0.01)


def test_corrupt_missing_and_unknown_files_name_the_file(tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF" + b"\x00garbage" * 50)
    bad_mp3 = tmp_path / "bad.mp3"
    bad_mp3.write_bytes(b"not an mp3 at all" * 100)
    odd = tmp_path / "song.xyz"
    odd.write_bytes(b"x")
    for path in (corrupt, bad_mp3, tmp_path / "missing.flac", odd):
        with pytest.raises(AudioDecodeError, match=path.name):
            read_audio(path)


def test_a_file_with_six_channels_is_rejected(tmp_path):
    path = tmp_path / "surround.wav"
    soundfile.write(str(path), np.full((4_000, 6), 0.1, np.float32), 16_000)
    with pytest.raises(InvalidAudioError, match="surround.wav has 6 channels"):
        read_audio(path)


@pytest.mark.parametrize("samples, message", [
    (np.array([0.1, np.nan, 0.2] * 1000, np.float32), "NaN or Inf"),
    (np.array([0.1, np.inf, 0.2] * 1000, np.float32), "NaN or Inf"),
    (np.zeros(16_000, np.float32), "all silent"),
    (np.full((3, 1000), 0.1, np.float32), "unsupported channel layout"),
    (np.full((2, 2, 10), 0.1, np.float32), "unsupported channel layout"),
])
def test_check_audio_rejects_bad_samples(samples, message):
    with pytest.raises(InvalidAudioError, match=message) as info:
        check_audio(samples, 16_000, "track-7/vocals.wav")
    assert "track-7/vocals.wav" in str(info.value)


def test_check_audio_rejects_too_short_and_warns_on_clipping():
    with pytest.raises(InvalidAudioError, match=r"short.wav: 6.00 s long, shorter than the requested 10 s"):
        check_audio(_tone(duration_s=6.0, rate=16_000), 16_000, "short.wav", min_duration_s=10.0)
    clipped = np.clip(_tone(amp=1.5), -1, 1)
    with pytest.warns(ClippingWarning, match="loud.wav"):
        check_audio(clipped, 44_100, "loud.wav")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_audio(_tone(), 44_100, "fine.wav", min_duration_s=1.0)


# ---- truncated data: libsndfile returns what is there without a word; the header is read


@pytest.mark.parametrize("fmt,subtype,suffix", [("WAV", "PCM_16", ".wav"), ("WAV", "FLOAT", ".wav"),
                                                ("WAV", "PCM_24", ".wav"), ("AIFF", "PCM_16", ".aiff")])
def test_data_ending_before_the_header_says_is_an_error_naming_both_lengths(tmp_path, fmt, subtype, suffix):
    from hafm_core.errors import TruncatedAudioError

    path = tmp_path / f"cut{suffix}"
    soundfile.write(str(path), _tone(2.0, 24_000), 24_000, subtype=subtype, format=fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    present = soundfile.info(str(path)).frames  # what libsndfile would silently hand over
    assert 0 < present < 48_000
    with pytest.raises(TruncatedAudioError, match=rf"cut{suffix}: truncated: its data ends after {present} "
                                                  r"samples .* declares 48000 \(2\.000 s\)"):
        read_audio(path)


def test_truncated_ogg_is_an_error_and_a_whole_one_reads(tmp_path):
    from hafm_core.errors import TruncatedAudioError

    path = tmp_path / "clip.ogg"
    rng = np.random.default_rng(0)
    noisy = (_tone(4.0, 24_000) + 0.05 * rng.standard_normal(96_000)).astype(np.float32)
    soundfile.write(str(path), noisy, 24_000, format="OGG", subtype="VORBIS")
    assert read_audio(path)[0].shape == (96_000,)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 4 // 5])
    with pytest.raises(TruncatedAudioError, match="no end-of-stream page"):
        read_audio(path)


def test_a_streaming_writers_placeholder_length_is_not_called_truncated(tmp_path):
    """Writers that stream to a pipe put 0xFFFFFFFF in the data size: no length was declared."""
    path = tmp_path / "streamed.wav"
    soundfile.write(str(path), _tone(1.0, 16_000), 16_000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    at = data.index(b"data")
    data[at + 4:at + 8] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(data))
    assert read_audio(path)[0].shape == (16_000,)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_refused_at_read_time(tmp_path, bad):
    path = tmp_path / "bad.wav"
    samples = _tone(1.0, 16_000)
    samples[100] = bad
    soundfile.write(str(path), samples, 16_000, subtype="FLOAT")
    with pytest.raises(InvalidAudioError, match=r"bad.wav: 1 samples are NaN or Inf \(first at sample 100\)"):
        read_audio(path, sample_rate_hz=24_000)  # before resampling spreads the NaN
