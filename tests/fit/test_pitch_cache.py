"""The on-disk vocal pitch cache: a hit skips CREPE and changes nothing, a broken entry is
recomputed, another model never reads an entry, concurrent writers never show a reader half a file."""

from __future__ import annotations

import copy
import logging
import threading

import numpy as np
import pytest
import torch

from hafm_core.fit import Excerpt, fit_excerpts
from hafm_core.fit.pitch_cache import PitchCache
from hafm_core.synth import synthesize_multitrack

RATE_HZ = 22_050


@pytest.fixture(scope="module")
def model():
    from hafm_core.crepe import CrepeTiny

    return CrepeTiny.load("cpu")


@pytest.fixture(scope="module")
def excerpts():
    tracks = [synthesize_multitrack(seed=s, duration_s=3.0, sample_rate_hz=RATE_HZ) for s in (41, 42)]
    return [Excerpt(t.name, t.stems["vocals"], t.accompaniment, RATE_HZ) for t in tracks]


def fit_counting_crepe(excerpts, model, cache):
    """(results as dicts, frames CREPE ran on)."""
    frames: list[int] = []
    hook = model.register_forward_pre_hook(lambda module, args: frames.append(args[0].shape[0]))
    try:
        results = fit_excerpts(excerpts, model, pitch_cache=cache)
    finally:
        hook.remove()
    return [r.to_dict() for r in results], sum(frames)


def entries(cache: PitchCache) -> list:
    return sorted(cache.root.rglob("*.pitch"))


def test_a_hit_skips_crepe_and_gives_the_same_results(model, excerpts, tmp_path):
    cache = PitchCache(tmp_path)
    uncached, _ = fit_counting_crepe(excerpts, model, None)
    first, first_frames = fit_counting_crepe(excerpts, model, cache)
    again, again_frames = fit_counting_crepe(excerpts, model, cache)
    assert first_frames > 0 and again_frames == 0
    assert len(entries(cache)) == len(excerpts)
    assert first == uncached and again == uncached


@pytest.mark.parametrize("damage", ["truncated", "flipped_byte", "empty"])
def test_a_corrupt_entry_is_recomputed_not_used(model, excerpts, tmp_path, caplog, damage):
    cache = PitchCache(tmp_path)
    expected, _ = fit_counting_crepe(excerpts[:1], model, cache)
    (path,) = entries(cache)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[:len(data) // 2 + 3])
    elif damage == "flipped_byte":  # a pitch value changed on disk: still a whole, well-sized file
        path.write_bytes(data[:-40] + bytes([data[-40] ^ 0x40]) + data[-39:])
    else:
        path.write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="hafm_core.fit.pitch_cache"):
        results, frames = fit_counting_crepe(excerpts[:1], model, cache)
    assert frames > 0, "the damaged entry was used instead of running CREPE"
    assert results == expected
    assert "discarding corrupt fit pitch cache entry" in caplog.text
    assert path.read_bytes() == data  # rewritten whole


def test_a_cache_that_cannot_be_written_does_not_fail_the_fit(model, excerpts, tmp_path, caplog):
    """A full disk or a read-only cache folder is logged; the fit gives what it gives uncached."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache's folders would go")
    expected, _ = fit_counting_crepe(excerpts[:1], model, None)
    with caplog.at_level(logging.WARNING, logger="hafm_core.fit.pitch_cache"):
        results, frames = fit_counting_crepe(excerpts[:1], model, PitchCache(blocker / "fit-pitch"))
    assert frames > 0 and results == expected
    assert "could not write" in caplog.text


def test_another_model_does_not_read_the_entry(model, excerpts, tmp_path):
    cache = PitchCache(tmp_path)
    fit_counting_crepe(excerpts[:1], model, cache)
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.classifier.bias.add_(0.5)
    _, frames = fit_counting_crepe(excerpts[:1], other, cache)
    assert frames > 0
    assert len(entries(cache)) == 2


def test_concurrent_writers_never_show_a_reader_half_an_entry(tmp_path, caplog):
    """Writers put the same key (as workers measuring two systems of one run at once) while
    readers read it: every read is a miss or the whole entry, never a corrupt file."""
    cache = PitchCache(tmp_path)
    f0_hz = np.linspace(80, 800, 400_000, dtype=np.float32)  # 3.2 MB: a write takes a while
    periodicity = np.linspace(0, 1, 400_000, dtype=np.float32)
    key = "ab" * 32
    reads: list = []
    stop = threading.Event()

    def write():
        for _ in range(20):
            cache.put(key, f0_hz, periodicity)

    def read():
        while not stop.is_set():
            reads.append(cache.get(key))

    writers = [threading.Thread(target=write) for _ in range(2)]
    readers = [threading.Thread(target=read) for _ in range(2)]
    with caplog.at_level(logging.WARNING, logger="hafm_core.fit.pitch_cache"):
        for thread in readers + writers:
            thread.start()
        for thread in writers:
            thread.join()
        stop.set()
        for thread in readers:
            thread.join()
    assert "corrupt" not in caplog.text
    hits = [r for r in reads if r is not None]
    assert hits and all(np.array_equal(h[0], f0_hz) and np.array_equal(h[1], periodicity) for h in hits)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["ab", f"{key}.pitch"]  # no temp file left
