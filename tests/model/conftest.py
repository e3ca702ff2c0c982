"""Synthetic token caches in `hafm tokenize`'s format, without audio or tokenizers; the decoder's
graph-shaped step run on CPU."""

from unittest import mock

import numpy as np
import pytest
import torch

import hafm_core.sampling as sampling
from hafm_core.tokens import cache


def write_synthetic_cache(folder, n_excerpts: int = 12, semantic_frames: int = 8, seed: int = 0,
                          n_validation: int = 2):
    """Excerpts whose accompaniment follows the vocal; the last `n_validation` are validation."""
    rng = np.random.default_rng(seed)
    permutation = rng.permutation(500)
    entries = []
    for i in range(n_excerpts):
        vocal = rng.integers(0, 40, semantic_frames)
        accompaniment = permutation[vocal]
        codes = rng.integers(0, 1024, (8, semantic_frames * 3 // 2))
        codes[0] = np.repeat(accompaniment, 3)[::2][: codes.shape[1]] % 1024
        key = f"{i:064x}"
        path = cache.save_tokens(cache.token_file(folder, key), cache.ExcerptTokens(vocal, accompaniment, codes))
        split = "validation" if i >= n_excerpts - n_validation else "train"
        entries.append(cache.TokenIndexEntry(f"x{i}", f"track{i}", split, semantic_frames / 50, key,
                                             path.relative_to(folder).as_posix()))
    cache.write_index(folder, entries)
    return folder


@pytest.fixture
def token_cache(tmp_path):
    return write_synthetic_cache(tmp_path / "tokens")


@pytest.fixture(autouse=True)
def _single_thread():
    """Tests of this folder compare runs bit for bit; one thread also avoids oversubscription."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def graph_shaped_generate():
    """generate(model, cond, n_frames, seeds) with every static step attending all key slots
    (later ones masked), as a replayed CUDA graph does; returns (tokens, [steps of each
    `decode_static` call]) so a CPU test checks the graph's arithmetic."""

    def run(model, cond: torch.Tensor, n_frames: int, seeds: list[int]) -> tuple[torch.Tensor, list[int]]:
        real, calls = sampling.decode_static, []

        def every_slot(*args, **kwargs):
            calls.append(args[1])
            return real(*args, **kwargs, fixed_keys=True)

        with mock.patch.object(sampling, "decode_static", every_slot):
            return sampling.generate(model, cond, n_frames, seeds), calls

    return run
