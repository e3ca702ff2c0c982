"""Audio sets for FAD tests: seeded synthetic accompaniments written as 16 kHz wav folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hafm_core.audio import write_audio
from hafm_core.synth import synthesize_multitrack

SAMPLE_RATE_HZ = 16_000
DURATION_S = 3.0


def accompaniment(seed: int) -> np.ndarray:
    track = synthesize_multitrack(seed=seed, duration_s=DURATION_S, sample_rate_hz=SAMPLE_RATE_HZ)
    audio = track.accompaniment
    return (0.5 * audio / np.abs(audio).max()).astype(np.float32)


def write_set(folder: Path, clips: dict[str, np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, clip in clips.items():
        write_audio(folder / f"{name}.wav", clip, SAMPLE_RATE_HZ)
    return folder


@pytest.fixture(scope="session")
def audio_sets(tmp_path_factory) -> dict[str, Path]:
    """background: 8 songs; eval: 8 other songs; noisy: the eval songs with added noise."""
    root = tmp_path_factory.mktemp("fad-sets")
    rng = np.random.default_rng(0)
    background = {f"song{i:02d}": accompaniment(i) for i in range(8)}
    evaluation = {f"song{i:02d}": accompaniment(100 + i) for i in range(8)}
    noisy = {name: (clip + 0.2 * rng.standard_normal(len(clip))).astype(np.float32) * 0.5
             for name, clip in evaluation.items()}
    return {
        "background": write_set(root / "background", background),
        "eval": write_set(root / "eval", evaluation),
        "noisy": write_set(root / "noisy", noisy),
    }
