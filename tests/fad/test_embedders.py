"""Embedders: torchvggish weights layout, VGGish framing and log-mel, EnCodec and CREPE shapes."""

import math

import numpy as np
import pytest
import torch

from hafm_core.errors import ConfigError
from hafm_core.fad.embedders import load_embedder, melspec
from hafm_core.tokens.tiny import write_tiny_encodec

# torchvggish's state dict (vggish-10086976.pth): key -> shape, written out independently.
TORCHVGGISH_KEYS = {
    "features.0.weight": (64, 1, 3, 3), "features.0.bias": (64,),
    "features.3.weight": (128, 64, 3, 3), "features.3.bias": (128,),
    "features.6.weight": (256, 128, 3, 3), "features.6.bias": (256,),
    "features.8.weight": (256, 256, 3, 3), "features.8.bias": (256,),
    "features.11.weight": (512, 256, 3, 3), "features.11.bias": (512,),
    "features.13.weight": (512, 512, 3, 3), "features.13.bias": (512,),
    "embeddings.0.weight": (4096, 12288), "embeddings.0.bias": (4096,),
    "embeddings.2.weight": (4096, 4096), "embeddings.2.bias": (4096,),
    "embeddings.4.weight": (128, 4096), "embeddings.4.bias": (128,),
}


@pytest.fixture(scope="session")
def vggish_weights_dir(tmp_path_factory):
    """A random state dict in torchvggish's key layout (float16 on disk to keep it small)."""
    folder = tmp_path_factory.mktemp("weights")
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in TORCHVGGISH_KEYS.items():
        fan_in = math.prod(shape[1:]) if len(shape) > 1 else shape[0]
        state[key] = (torch.randn(shape, generator=generator) / math.sqrt(fan_in)).half()
    torch.save(state, folder / "vggish-10086976.pth")
    return folder


def reference_vggish_log_mel(audio: np.ndarray) -> np.ndarray:
    """VGGish's `mel_features.log_mel_spectrogram` at 16 kHz, restated in plain numpy loops."""
    window, hop, fft = 400, 160, 512
    n_frames = 1 + (len(audio) - window) // hop
    frames = np.stack([audio[i * hop: i * hop + window] for i in range(n_frames)]).astype(np.float64)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi / window * np.arange(window))  # periodic
    spectrogram = np.abs(np.fft.rfft(frames * hann, fft))

    def hz_to_mel(f):
        return 1127.0 * np.log(1.0 + f / 700.0)

    bins_mel = hz_to_mel(np.linspace(0, 8000, fft // 2 + 1))
    edges = np.linspace(hz_to_mel(125.0), hz_to_mel(7500.0), 66)
    weights = np.empty((fft // 2 + 1, 64))
    for i in range(64):
        lower, centre, upper = edges[i:i + 3]
        weights[:, i] = np.maximum(0, np.minimum((bins_mel - lower) / (centre - lower),
                                                 (upper - bins_mel) / (upper - centre)))
    weights[0, :] = 0.0
    return np.log(spectrogram @ weights + 0.01)


def test_log_mel_matches_vggish_reference():
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, 16_000).astype(np.float32)
    ours = melspec.log_mel(torch.from_numpy(audio)[None])[0].numpy()
    np.testing.assert_allclose(ours, reference_vggish_log_mel(audio), rtol=1e-4, atol=1e-4)


def test_vggish_loads_torchvggish_layout_and_frames_each_protocol(vggish_weights_dir, monkeypatch):
    monkeypatch.setenv("HAFM_WEIGHTS_DIR", str(vggish_weights_dir))
    clip = np.random.default_rng(1).uniform(-0.3, 0.3, 3 * 16_000).astype(np.float32)
    google = load_embedder("vggish", "vggish-google-v1", device="cpu")  # legacy protocol
    torchvggish = load_embedder("vggish", "vggish-torchvggish", device="cpu")
    g, t = google.embed(clip), torchvggish.embed(clip)
    assert g.shape == (1 + (48_000 - 16_000) // 8_000, 128)  # 1 s windows every 0.5 s
    assert t.shape == ((1 + (48_000 - 400) // 160) // 96, 128)  # non-overlapping 0.96 s
    assert g.dtype == t.dtype == np.float32
    # google-v1 is peak normalised: scaling the clip changes nothing; torchvggish is not.
    np.testing.assert_allclose(google.embed(0.25 * clip), g, rtol=1e-4, atol=1e-5)
    assert not np.allclose(torchvggish.embed(0.25 * clip), t, rtol=1e-4, atol=1e-5)
    # Window k of google-v1 is the first 96 frames of that second, alone.
    second = clip[8_000:24_000] / np.abs(clip).max()
    alone = torchvggish.embed(second.astype(np.float32))
    np.testing.assert_allclose(alone[0], g[1], rtol=1e-4, atol=1e-5)
    assert google.weights_hash == torchvggish.weights_hash and len(google.weights_hash) == 64


# Reference preprocessing of each protocol, written from the tools' published code in numpy:
# clip float [n] -> VGGish examples float [E, 96, 64] and whether ReLU follows fc2.
def reference_google_examples(clip: np.ndarray) -> np.ndarray:
    """google-research frechet_audio_distance: x / max(0.1, max x); 1 s windows every 8000 samples;
    each window framed into 96-frame examples with hop 96 (one per window)."""
    x = clip.astype(np.float64) / max(0.1, float(np.max(clip)))
    windows = [x[i:i + 16_000] for i in range(0, len(x) - 16_000 + 1, 8_000)]
    return np.stack([reference_vggish_log_mel(w)[:96] for w in windows])


def reference_torchvggish_examples(clip: np.ndarray) -> np.ndarray:
    """torchvggish `waveform_to_examples`: log-mel framed into non-overlapping 96-frame examples."""
    mel = reference_vggish_log_mel(clip.astype(np.float64))
    return np.stack([mel[i:i + 96] for i in range(0, len(mel) - 96 + 1, 96)])


def reference_fadtk_examples(clip: np.ndarray) -> np.ndarray:
    """fadtk VGGishModel: 16-bit integers / 32768, zero-padded to 1 s, then torchvggish."""
    x = np.clip(np.round(clip.astype(np.float64) * 32768), -32768, 32767) / 32768
    if len(x) < 16_000:
        x = np.pad(x, (0, 16_000 - len(x)))
    return reference_torchvggish_examples(x)


REFERENCES = {  # protocol -> (examples, ReLU after fc2, float16 storage)
    "vggish-google": (reference_google_examples, False, False),
    "vggish-fadtk": (reference_fadtk_examples, False, True),
    "vggish-frechet-audio-distance": (reference_torchvggish_examples, False, False),
    "vggish-torchvggish": (reference_torchvggish_examples, True, False),
}


def clips_that_tell_the_protocols_apart():
    rng = np.random.default_rng(7)
    loud = rng.uniform(-0.3, 0.3, 40_000)
    negative = loud - 0.25  # negative-dominant: largest positive sample << max |x|
    quiet = 0.02 * loud  # largest sample below Google's 0.1 floor
    return {"loud": loud, "negative": negative, "quiet": quiet, "short": loud[:12_000]}


@pytest.mark.parametrize("protocol", sorted(REFERENCES))
def test_each_protocol_equals_its_reference_preprocessing_with_the_same_weights(
        protocol, vggish_weights_dir, monkeypatch):
    monkeypatch.setenv("HAFM_WEIGHTS_DIR", str(vggish_weights_dir))
    embedder = load_embedder("vggish", protocol, device="cpu")
    make_examples, relu, float16 = REFERENCES[protocol]
    for name, clip in clips_that_tell_the_protocols_apart().items():
        clip = clip.astype(np.float32)
        ours = embedder.embed(clip)
        if name == "short" and protocol != "vggish-fadtk":  # 0.75 s: no window, no example
            assert ours.shape == (0, 128)
            continue
        examples = torch.from_numpy(make_examples(clip).astype(np.float32))[:, None]
        with torch.no_grad():
            linear = embedder.model(examples, activation=False).numpy()
        expected = np.maximum(linear, 0) if relu else linear
        if float16:
            expected = expected.astype(np.float16).astype(np.float32)
        assert ours.shape == expected.shape, (name, ours.shape, expected.shape)
        tolerance = 2e-3 if float16 else 1e-4
        np.testing.assert_allclose(ours, expected, rtol=tolerance, atol=tolerance * np.abs(expected).max(),
                                   err_msg=f"{protocol} on the {name} clip")
        if not relu:
            assert (ours < 0).any()  # pre-activation: fc2's linear output has negative values


def test_google_protocol_uses_the_largest_positive_sample_with_its_floor(vggish_weights_dir, monkeypatch):
    monkeypatch.setenv("HAFM_WEIGHTS_DIR", str(vggish_weights_dir))
    google = load_embedder("vggish", "vggish-google", device="cpu")
    clips = clips_that_tell_the_protocols_apart()
    loud = clips["loud"].astype(np.float32)
    np.testing.assert_allclose(google.embed(0.5 * loud), google.embed(loud), rtol=1e-4, atol=1e-4)
    quiet = clips["quiet"].astype(np.float32)  # under the floor: loudness is kept, not normalised
    assert not np.allclose(google.embed(quiet), google.embed(loud * 0.5), rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(google.embed(quiet), google.embed(2 * quiet / 2), rtol=1e-5)


def test_batched_and_single_clip_embeddings_agree(vggish_weights_dir, monkeypatch):
    monkeypatch.setenv("HAFM_WEIGHTS_DIR", str(vggish_weights_dir))
    embedder = load_embedder("vggish", device="cpu")
    rng = np.random.default_rng(2)
    clips = [rng.uniform(-0.3, 0.3, n).astype(np.float32) for n in (32_000, 32_000, 40_000)]
    batched = embedder.embed_batch(clips)
    for clip, together in zip(clips, batched):
        # bit for bit: a file's embedding never depends on the files embedded with it
        assert np.array_equal(embedder.embed(clip), together)


def test_encodec_embeddings_are_time_major(tmp_path, monkeypatch):
    write_tiny_encodec(tmp_path, seed=0)
    monkeypatch.setenv("HAFM_WEIGHTS_DIR", str(tmp_path))
    embedder = load_embedder("encodec", device="cpu")
    clip = np.random.default_rng(3).uniform(-0.3, 0.3, 24_000).astype(np.float32)
    out = embedder.embed(clip)
    assert embedder.sample_rate_hz == 24_000
    assert out.shape == (math.ceil(24_000 / 320), embedder.dim)


def test_crepe_tiny_embeddings():
    embedder = load_embedder("crepe", device="cpu")
    clip = np.random.default_rng(4).uniform(-0.3, 0.3, 16_000).astype(np.float32)
    out = embedder.embed(clip)
    assert out.shape == (1 + 16_000 // 320, 256) and np.all(np.isfinite(out))


def test_unknown_embedder_or_protocol_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown embedder 'pann'"):
        load_embedder("pann")
    with pytest.raises(ConfigError, match="no protocol 'vggish-v9'"):
        load_embedder("vggish", "vggish-v9")
