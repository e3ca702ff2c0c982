"""Fixtures of the audio/tokens area: tiny random-init weights, written once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_weights_dir(tmp_path_factory):
    """HAFM_WEIGHTS_DIR layout with tiny HuBERT, tiny EnCodec and a 500-centroid k-means."""
    from hafm_core.tokens.tiny import write_tiny_weights

    return write_tiny_weights(tmp_path_factory.mktemp("weights"), seed=0, kmeans=True)


@pytest.fixture(scope="session")
def acoustic_tokenizer(tiny_weights_dir):
    from hafm_core.tokens.acoustic import AcousticTokenizer

    return AcousticTokenizer.from_pretrained(tiny_weights_dir / "encodec_24khz", device="cpu")


@pytest.fixture(scope="session")
def semantic_tokenizer(tiny_weights_dir):
    from hafm_core.tokens.semantic import SemanticTokenizer

    return SemanticTokenizer.from_pretrained(tiny_weights_dir / "hubert-base-ls960",
                                             tiny_weights_dir / "kmeans.npy", device="cpu")
