"""Measuring a run's systems pitch-tracks each vocal once: the second system's fit reads the
vocal pitch that the first system's measure left in HAFM_CACHE_DIR, and gets what it gets without it."""

from __future__ import annotations

import pytest
import torch

from evalsite.services.benchmark_work import measure_fit
from tests.benchmarks_site.conftest import DURATION_S, SAMPLE_RATE_HZ, make_dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_with_two_systems(media_root):
    """A run whose "ground-truth" and "random" clips (done, not yet fitted) share two vocals."""
    from evalsite.models import BenchmarkRun, Checkpoint, GeneratedClip
    from hafm_core.audio import write_audio
    from hafm_core.synth import synthesize_multitrack

    dataset = make_dataset(media_root, n_tracks=2)
    checkpoint = Checkpoint.objects.create(name="ckpt", path="/c", content_hash="c")
    run = BenchmarkRun.objects.create(checkpoint=checkpoint, dataset=dataset, systems=["ground-truth", "random"],
                                      n_excerpts=2, seed=0, embedder="vggish", parameters_hash="p",
                                      code_version="test", status="running")
    for index, excerpt in enumerate(dataset.excerpts.order_by("key")):
        GeneratedClip.objects.create(run=run, excerpt=excerpt, system="ground-truth", seed=0, status="done",
                                     accompaniment_path=excerpt.accompaniment_path)
        other = synthesize_multitrack(seed=50 + index, duration_s=DURATION_S, sample_rate_hz=SAMPLE_RATE_HZ)
        path = write_audio(media_root / f"random-{excerpt.key}.wav", other.accompaniment, SAMPLE_RATE_HZ)
        GeneratedClip.objects.create(run=run, excerpt=excerpt, system="random", seed=0, status="done",
                                     accompaniment_path=str(path))
    return run


def measure_counting_crepe(run, system) -> tuple[dict, int]:
    """(fit summary, frames CREPE ran on) of one system's measure, as its worker task calls it."""
    from hafm_core.crepe import CrepeTiny

    frames: list[int] = []

    def count(module, args):
        if isinstance(module, CrepeTiny):
            frames.append(args[0].shape[0])

    hook = torch.nn.modules.module.register_module_forward_pre_hook(count)
    try:
        return measure_fit(run, system), sum(frames)
    finally:
        hook.remove()


def test_the_second_system_reads_the_vocal_pitch_from_the_cache(run_with_two_systems, tmp_path, monkeypatch):
    from evalsite.models import GeneratedClip

    run = run_with_two_systems
    monkeypatch.setenv("HAFM_CACHE_DIR", str(tmp_path / "cold"))
    _, cold_frames = measure_counting_crepe(run, "random")  # what "random" gets with no cache
    cold = dict(GeneratedClip.objects.filter(run=run, system="random").values_list("excerpt__key", "fit"))
    GeneratedClip.objects.filter(run=run, system="random").update(fit={})

    monkeypatch.setenv("HAFM_CACHE_DIR", str(tmp_path / "shared"))
    first, first_frames = measure_counting_crepe(run, "ground-truth")
    second, second_frames = measure_counting_crepe(run, "random")
    assert first_frames == cold_frames > 0
    assert second_frames == 0, "the second system's measure ran CREPE again"
    assert len(list((tmp_path / "shared" / "fit-pitch").rglob("*.pitch"))) == 2  # one per vocal
    assert first["n_ok"] == second["n_ok"] == 2
    warm = dict(GeneratedClip.objects.filter(run=run, system="random").values_list("excerpt__key", "fit"))
    assert warm == cold
