"""Attack: tell the systems apart by how their clips were rendered, not by the music.

A 24 kHz model output has nothing above 12 kHz and a 44.1 kHz recording does ("the brighter
clip is ground truth"); a mono model output against a stereo recording ("the wide one");
a peak-limited or peak-scaled clip at another loudness. One rendering per study removes
each of these: checked on the stored stimuli of a study made from such sources.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from listening import stimuli as render
from listening.delivery import read_pcm16

pytestmark = pytest.mark.django_db

RATE_HZ = 44_100
DURATION_S = 2.0


def tone_mix(rng, rate_hz: int, n_channels: int, bright: bool) -> np.ndarray:
    """Harmonic tones plus noise, [n, C]; `bright` adds content up to 20 kHz."""
    t = np.arange(int(DURATION_S * rate_hz)) / rate_hz
    signal = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((220, 440, 880, 1760), start=1))
    if bright:
        signal = signal + 0.3 * sum(np.sin(2 * np.pi * f * t) for f in (13_000, 16_000, 19_000))
    channels = [signal + 0.05 * rng.standard_normal(t.size) for _ in range(n_channels)]
    return 0.2 * np.stack(channels, axis=1)


@pytest.fixture
def mixed_sources(tmp_path):
    """One excerpt: a 44.1 kHz stereo recording (ground truth) and a 24 kHz mono model output."""
    rng = np.random.default_rng(0)
    vocal = tmp_path / "vocal.wav"
    sf.write(vocal, tone_mix(rng, RATE_HZ, 1, bright=False)[:, 0], RATE_HZ)
    truth = tmp_path / "truth.wav"
    sf.write(truth, tone_mix(rng, RATE_HZ, 2, bright=True), RATE_HZ)
    model = tmp_path / "model.wav"
    sf.write(model, tone_mix(rng, 24_000, 1, bright=False)[:, 0], 24_000)
    return [{"excerpt": "e1", "system": "ground-truth", "vocal_path": str(vocal), "accompaniment_path": str(truth)},
            {"excerpt": "e1", "system": "three-stage", "vocal_path": str(vocal), "accompaniment_path": str(model)}]


def energy_above_db(samples: np.ndarray, rate_hz: int, cutoff_hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples, axis=1)) ** 2
    freqs = np.fft.rfftfreq(samples.shape[1], 1.0 / rate_hz)
    return float(10 * np.log10(spectrum[:, freqs > cutoff_hz].sum() / spectrum.sum() + 1e-30))


def stored(study, settings):
    from pathlib import Path

    return {s.system: read_pcm16(Path(settings.MEDIA_ROOT) / s.file_name)[0]
            for s in study.stimuli.filter(variant="")}


def test_one_rendering_hides_bandwidth_layout_and_level(make_study, mixed_sources, settings):
    study = make_study(stimuli=mixed_sources, comparisons=[("three-stage", "ground-truth")], catch_rate=0.0,
                       sample_rate_hz=RATE_HZ, attributes=[])
    assert study.bandwidth_hz == pytest.approx(render.BANDWIDTH_MARGIN * 12_000)
    assert study.channel_layout == "dual-mono"
    clips = stored(study, settings)
    # Brightness: above 12.5 kHz (the measure) both clips hold only quantisation noise.
    above = {system: energy_above_db(x, RATE_HZ, 12_500) for system, x in clips.items()}
    assert max(above.values()) < -75.0, above  # 16-bit quantisation noise, against -24 dB unrendered
    assert abs(above["ground-truth"] - above["three-stage"]) < 1.0, above
    # Layout: the stereo recording is rendered as two identical channels like the mono output.
    for x in clips.values():
        assert np.max(np.abs(x[0] - x[1])) < 2.0 / 32768
    # Level, measured on what is stored (after limiting).
    for x in clips.values():
        assert abs(render.integrated_loudness(x, RATE_HZ) - study.target_lufs) <= 0.1


def test_without_the_common_rendering_the_brighter_clip_is_ground_truth(mixed_sources):
    """The same sources through a rendering without low-pass: the attack's cue is there."""
    sources = {s["system"]: render.read_stereo(s["accompaniment_path"], RATE_HZ) for s in mixed_sources}
    vocal = render.read_stereo(mixed_sources[0]["vocal_path"], RATE_HZ)
    clips = {c.system: c.samples for c in render.render_excerpt(vocal, sources, render.RenderConfig(RATE_HZ))}
    above = {system: energy_above_db(x, RATE_HZ, 12_500) for system, x in clips.items()}
    assert above["ground-truth"] - above["three-stage"] > 15.0, above
    assert np.max(np.abs(clips["ground-truth"][0] - clips["ground-truth"][1])) > 0.001


def clicky(tmp_path, name: str, click: float) -> str:
    """A quiet accompaniment with a few clicks of amplitude `click`."""
    rng = np.random.default_rng(1)
    x = 0.01 * rng.standard_normal(int(DURATION_S * RATE_HZ))
    x[::RATE_HZ // 4] = click
    path = tmp_path / name
    sf.write(path, x, RATE_HZ)
    return str(path)


def test_a_quiet_clip_with_clicks_is_limited_to_the_target(tmp_path):
    vocal = render.read_stereo(clicky(tmp_path, "v.wav", 0.0), RATE_HZ)
    accompaniment = render.read_stereo(clicky(tmp_path, "a.wav", 0.3), RATE_HZ)
    config = render.RenderConfig(RATE_HZ, target_lufs=-14.0)
    (clip,) = render.render_excerpt(vocal, {"x": accompaniment}, config)
    assert np.max(np.abs(clip.samples)) <= render.PEAK_CEILING + 1e-9
    assert abs(render.integrated_loudness(clip.samples, RATE_HZ) + 14.0) <= 0.1  # was -35 against -23


def test_a_clip_that_cannot_reach_the_target_is_refused_with_its_reason(make_study, mixed_sources, tmp_path):
    vocal = clicky(tmp_path, "v.wav", 0.0)
    sources = [{**s, "vocal_path": vocal} for s in mixed_sources]
    sources[1]["accompaniment_path"] = clicky(tmp_path, "spiky.wav", 1.0)
    with pytest.raises(render.StimulusRefused) as refused:
        make_study(stimuli=sources, comparisons=[("three-stage", "ground-truth")], catch_rate=0.0,
                   sample_rate_hz=RATE_HZ, attributes=[], target_lufs=-10.0)
    message = str(refused.value)
    assert "three-stage" in message and "LUFS" in message and "peak limiting" in message
