"""Attack: a script answers the headphone check from the audio file, without headphones or ears.

The textbook Huggins stimulus has two diotic distractors (identical channels) and one target
that is not, so the channel difference, the interaural correlation or the level names the
target. The delivered stimuli must leave such a script at chance, differ per delivery, and
still carry the cue a listener hears (the phase flip in the narrow band around 600 Hz).
"""

from __future__ import annotations

import hashlib

import numpy as np
from scipy.stats import binomtest

from listening import huggins
from listening.delivery import wav_samples

N_TRIALS = 45


def bursts(audio: np.ndarray) -> list[np.ndarray]:
    n, gap = int(huggins.BURST_S * huggins.SAMPLE_RATE_HZ), int(huggins.GAP_S * huggins.SAMPLE_RATE_HZ)
    return [audio[:, i * (n + gap): i * (n + gap) + n] for i in range(huggins.N_INTERVALS)]


def file_features(burst: np.ndarray) -> dict[str, float]:
    """What a script reads from the channels of one burst (larger = "more like the target")."""
    left, right = burst
    n = left.size
    cross = np.fft.irfft(np.fft.rfft(left, 2 * n) * np.conj(np.fft.rfft(right, 2 * n)), 2 * n)
    best = np.max(np.abs(np.concatenate([cross[:40], cross[-40:]])))  # lags within +-40 samples
    correlation = best / np.sqrt(np.dot(left, left) * np.dot(right, right))
    return {"side_energy": float(np.mean((left - right) ** 2)),
            "decorrelation": float(1.0 - correlation),
            "level_difference": float(abs(np.log(np.mean(left**2) / np.mean(right**2))))}


def band_phase_flip(burst: np.ndarray) -> float:
    """The listener's cue: interaural phase in the Huggins band against the bands beside it."""
    left, right = (np.fft.rfft(channel) for channel in burst)
    freqs = np.fft.rfftfreq(burst.shape[1], 1.0 / huggins.SAMPLE_RATE_HZ)
    cross = left * np.conj(right)
    half = huggins.CENTRE_HZ * huggins.RELATIVE_BANDWIDTH / 2.0
    inside = np.abs(freqs - huggins.CENTRE_HZ) <= half
    beside = (np.abs(freqs - huggins.CENTRE_HZ) > 2 * half) & (np.abs(freqs - huggins.CENTRE_HZ) <= 4 * half)
    return float(abs(np.angle(cross[inside].sum() / cross[beside].sum())))


def script_accuracy(diotic: bool) -> dict[str, int]:
    rng = np.random.default_rng(1)
    hits = {"side_energy": 0, "decorrelation": 0, "level_difference": 0, "band_phase": 0}
    for _ in range(N_TRIALS):
        target = int(rng.integers(1, 4))
        audio = huggins.trial_audio(int(rng.integers(2**62)), target, diotic=diotic)
        features = [file_features(b) for b in bursts(audio)]
        for name in ("side_energy", "decorrelation", "level_difference"):
            hits[name] += int(np.argmax([f[name] for f in features])) + 1 == target
        hits["band_phase"] += int(np.argmax([band_phase_flip(b) for b in bursts(audio)])) + 1 == target
    return hits


def test_a_script_reading_the_channels_is_at_chance_while_the_huggins_cue_remains():
    hits = script_accuracy(diotic=False)
    for name in ("side_energy", "decorrelation", "level_difference"):
        assert binomtest(hits[name], N_TRIALS, 1 / 3, alternative="greater").pvalue > 0.01, (name, hits)
    assert hits["band_phase"] >= 0.95 * N_TRIALS  # the pitch cue itself is intact


def test_the_textbook_diotic_stimulus_gives_the_answer_away():
    """The attack works on what the defence replaced (so the test above can fail)."""
    hits = script_accuracy(diotic=True)
    assert hits["side_energy"] == N_TRIALS and hits["decorrelation"] == N_TRIALS


def test_every_delivery_is_new_noise_with_the_trial_target():
    first = huggins.delivered_screening_wav(1234, 2, "token-a")
    assert huggins.delivered_screening_wav(1234, 2, "token-a") == first  # byte ranges of one delivery agree
    second = huggins.delivered_screening_wav(1234, 2, "token-b")
    assert hashlib.sha256(first).digest() != hashlib.sha256(second).digest()
    for data in (first, second):
        audio, _ = wav_samples(data)
        flips = [band_phase_flip(b) for b in bursts(audio)]
        assert int(np.argmax(flips)) + 1 == 2
