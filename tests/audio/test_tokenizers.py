"""Semantic (HuBERT + k-means, 50 Hz) and acoustic (EnCodec 6 kbps, 75 Hz) tokenizers on tiny weights."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch

from hafm_core.errors import ConfigError, MissingWeightsError
from hafm_core.synth import synthesize_multitrack
from hafm_core.tokens.acoustic import AcousticTokenizer
from hafm_core.tokens.semantic import SemanticTokenizer, fit_kmeans
from hafm_core.tokens.tiny import write_tiny_weights


def _audio(rate, duration_s=2.0, seed=1, stem="vocals"):
    track = synthesize_multitrack(seed, duration_s=duration_s, sample_rate_hz=rate)
    audio = track.accompaniment if stem == "accompaniment" else track.stems[stem]
    return audio[None].astype(np.float32)


def test_tiny_weights_are_byte_identical_for_a_seed(tmp_path, tiny_weights_dir):
    a = tiny_weights_dir  # seed 0
    b = write_tiny_weights(tmp_path / "b", seed=0)
    for folder in ("hubert-base-ls960", "encodec_24khz"):
        for name in ("config.json", "model.safetensors"):
            assert (a / folder / name).read_bytes() == (b / folder / name).read_bytes()


def test_tiny_encodec_gives_eight_codebooks_at_6kbps(tiny_weights_dir):
    from transformers import EncodecModel

    model = EncodecModel.from_pretrained(tiny_weights_dir / "encodec_24khz", local_files_only=True)
    codes = model.encode(torch.zeros(1, 1, 24_000), bandwidth=6.0).audio_codes
    assert codes.shape == (1, 1, 8, 75)


@pytest.mark.parametrize("n_samples", [320, 321, 959, 960, 24_000, 48_001])
def test_acoustic_frame_count_is_ceil_n_over_320(acoustic_tokenizer, n_samples):
    audio = _audio(24_000, duration_s=2.1, stem="accompaniment")[:, :n_samples]
    codes = acoustic_tokenizer.encode(audio)
    assert codes.shape == (1, 8, math.ceil(n_samples / 320)) and codes.dtype == np.int64
    assert acoustic_tokenizer.embed(audio).shape == (1, 32, math.ceil(n_samples / 320))


def test_acoustic_encode_decode_shapes_and_bitrates(acoustic_tokenizer):
    audio = np.concatenate([_audio(24_000, seed=1, stem="accompaniment"),
                            _audio(24_000, seed=2, stem="accompaniment")])  # (2, 48000)
    codes = acoustic_tokenizer.encode(audio)
    assert codes.shape == (2, 8, 150)
    assert 0 <= codes.min() and codes.max() < 1024
    assert len(np.unique(codes[0, 0])) > 1  # codes follow the audio, not a constant
    full = acoustic_tokenizer.decode(codes)
    coarse = acoustic_tokenizer.decode(codes[:, :4])
    assert full.shape == coarse.shape == (2, 48_000) and full.dtype == np.float32
    assert np.abs(full - coarse).max() > 0  # the fine codebooks change the (random-init) decoder output
    tensor_codes = acoustic_tokenizer.encode(torch.from_numpy(audio))
    assert isinstance(tensor_codes, torch.Tensor) and torch.equal(tensor_codes, torch.from_numpy(codes))
    with pytest.raises(ValueError, match="4 or 8"):
        acoustic_tokenizer.decode(codes[:, :6])


def test_acoustic_chunking_keeps_frame_count(tiny_weights_dir):
    chunked = AcousticTokenizer.from_pretrained(tiny_weights_dir / "encodec_24khz", device="cpu", chunk_s=0.4)
    audio = _audio(24_000, duration_s=1.0, stem="accompaniment")[:, :23_000]
    codes = chunked.encode(audio)
    assert codes.shape == (1, 8, math.ceil(23_000 / 320))
    assert chunked.decode(codes).shape == (1, codes.shape[-1] * 320)
    assert chunked.embed(audio).shape[-1] == codes.shape[-1]


@pytest.mark.parametrize("n_samples, frames", [(32_000, 100), (32_319, 100), (31_999, 99), (640, 2), (319, 0)])
def test_semantic_frame_count_is_n_over_320(semantic_tokenizer, n_samples, frames):
    vocal = _audio(16_000, duration_s=2.1)[:, :n_samples]
    assert semantic_tokenizer.features(vocal).shape == (1, frames, 32)
    ids = semantic_tokenizer.encode(vocal)
    assert ids.shape == (1, frames) and ids.dtype == np.int64


def test_semantic_ids_layer_noise_and_batching(semantic_tokenizer, tiny_weights_dir):
    vocals = np.concatenate([_audio(16_000, seed=1), _audio(16_000, seed=2)])
    ids = semantic_tokenizer.encode(vocals, seed=[5, 6])
    assert ids.shape == (2, 100) and 0 <= ids.min() and ids.max() < 500
    assert len(np.unique(ids)) > 10
    # Noise is per row and seeded: one-by-one equals batched.
    np.testing.assert_array_equal(ids[1], semantic_tokenizer.encode(vocals[1:], seed=6)[0])
    clean = semantic_tokenizer.features(vocals, noise_sigma=0.0)
    noisy = semantic_tokenizer.features(vocals, seed=0)
    assert not np.allclose(clean, noisy)
    np.testing.assert_array_equal(noisy, semantic_tokenizer.features(vocals, seed=0))
    # Layer selection: another layer gives other features; layers past the model's are refused.
    layer3 = SemanticTokenizer.load_hubert(tiny_weights_dir / "hubert-base-ls960", layer=3, device="cpu")
    assert not np.allclose(layer3.features(vocals, seed=0), noisy)
    assert layer3.weights_hash != semantic_tokenizer.weights_hash


def test_kmeans_ids_are_nearest_centroids(semantic_tokenizer):
    from scipy.spatial.distance import cdist

    features = semantic_tokenizer.features(_audio(16_000, seed=4), seed=0)[0]
    ids = semantic_tokenizer.quantize(features[None])[0]
    centroids = semantic_tokenizer.centroids.numpy()
    np.testing.assert_array_equal(ids, cdist(features, centroids).argmin(axis=1))


def test_fit_kmeans_streams_batches_and_refuses_too_few_frames():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 8)) * 10
    chunks = [centres[rng.integers(0, 4, 300)] + rng.normal(size=(300, 8)) * 0.1 for _ in range(10)]
    centroids = fit_kmeans(iter(chunks), n_clusters=4, seed=0, batch_size=500)
    assert centroids.shape == (4, 8) and centroids.dtype == np.float32
    nearest = np.sort([np.linalg.norm(centroids - c, axis=1).min() for c in centres])
    assert nearest.max() < 0.5
    from hafm_core.errors import DatasetError

    with pytest.raises(DatasetError, match="needs at least 500 feature frames, got 300"):
        fit_kmeans(iter(chunks[:1]), n_clusters=500)


def test_kmeans_fitted_on_another_layer_or_hubert_is_refused(tiny_weights_dir, tmp_path):
    """kmeans.json records the HuBERT layer and weights: tokens from layer 9 centroids are never
    computed from layer 6 features, and swapped centroids or HuBERT weights are refused."""
    hubert, kmeans = tiny_weights_dir / "hubert-base-ls960", tiny_weights_dir / "kmeans.npy"
    assert json.loads(kmeans.with_suffix(".json").read_text())["layer"] == 9
    with pytest.raises(ConfigError, match="fitted on HuBERT layer 9 but layer 6"):
        SemanticTokenizer.from_pretrained(hubert, kmeans, layer=6, device="cpu")
    other = tmp_path / "kmeans.npy"
    np.save(other, np.load(kmeans) + 1.0)
    shutil.copy(kmeans.with_suffix(".json"), other.with_suffix(".json"))
    with pytest.raises(ConfigError, match="does not match kmeans.json"):
        SemanticTokenizer.from_pretrained(hubert, other, device="cpu")
    other_hubert = tmp_path / "hubert"
    shutil.copytree(hubert, other_hubert)
    (other_hubert / "config.json").write_text((hubert / "config.json").read_text() + "\n")
    with pytest.raises(ConfigError, match="other HuBERT weights"):
        SemanticTokenizer.from_pretrained(other_hubert, kmeans, device="cpu")


def test_fit_kmeans_is_order_free_on_track_clustered_features():
    """Frames arrive track by track and each track covers a few clusters: the fit must still
    reach a full k-means (5%), whatever the order. A single streamed pass did not (x4.9 here)."""
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(1)
    n_clusters, dim = 24, 12
    centres = rng.normal(size=(n_clusters, dim)) * 6
    tracks = []
    for _ in range(48):
        own = rng.choice(n_clusters, 3, replace=False)  # a track uses 3 of the 24 clusters
        tracks.append(centres[rng.choice(own, 120)] + rng.normal(size=(120, dim)))
    rows = np.concatenate(tracks)
    full = KMeans(n_clusters=n_clusters, n_init=4, random_state=0).fit(rows).inertia_

    def inertia(centroids):
        from scipy.spatial.distance import cdist

        return float((cdist(rows, centroids, "sqeuclidean").min(axis=1)).sum())

    in_order = inertia(fit_kmeans(iter(tracks), n_clusters=n_clusters, seed=0, batch_size=256))
    shuffled = inertia(fit_kmeans(iter(rows[rng.permutation(len(rows))][None]), n_clusters=n_clusters,
                                  seed=0, batch_size=256))
    assert in_order <= 1.05 * full and shuffled <= 1.05 * full, (in_order, shuffled, full)


def test_missing_weights_name_path_and_public_model(tmp_path, tiny_weights_dir):
    with pytest.raises(MissingWeightsError, match=f"{tmp_path}/nope.*facebook/encodec_24khz"):
        AcousticTokenizer.from_pretrained(tmp_path / "nope")
    with pytest.raises(MissingWeightsError, match="facebook/hubert-base-ls960"):
        SemanticTokenizer.from_pretrained(tmp_path / "hubert", tiny_weights_dir / "kmeans.npy")
    with pytest.raises(MissingWeightsError, match="kmeans.npy does not exist"):
        SemanticTokenizer.from_pretrained(tiny_weights_dir / "hubert-base-ls960", tmp_path / "kmeans.npy")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingWeightsError, match="lacks config.json"):
        AcousticTokenizer.from_pretrained(tmp_path / "empty")


def test_loading_works_offline(tiny_weights_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tokenizer = AcousticTokenizer.from_pretrained(tiny_weights_dir / "encodec_24khz", device="cpu")
    assert len(tokenizer.weights_hash) == 64
