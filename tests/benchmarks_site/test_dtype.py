"""A run's `dtype` (precision of the cascade's weights): validated at the CLI, the form and the
service, used by the generation tasks, recorded in the run's provenance, and part of the run's
identity (a relaunch in another dtype is a new run, never the old one reused)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.urls import reverse

from evalsite.models import BenchmarkRun, GeneratedClip
from evalsite.services import benchmark_work, benchmarks
from hafm_core.cli import main
from hafm_core.provenance import sha256_bytes
from tests.benchmarks_site.conftest import make_dataset, queued_tasks

pytestmark = pytest.mark.django_db


def _argv(checkpoint, *extra: str) -> list[str]:
    return ["benchmark", "run", "--checkpoint", str(checkpoint), "--dataset", "synthetic:10", "--systems",
            "random,ground-truth", "--excerpts", "2", "--embedder", "logmel", "--json", *extra]


def _launch(capsys, argv) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_the_cli_refuses_an_unknown_dtype_and_records_a_valid_one(capsys, media_root, tiny_checkpoint_dir,
                                                                   broker_url, tmp_path):
    assert main(_argv(tiny_checkpoint_dir, "--dtype", "float64")) == 2
    err = capsys.readouterr().err
    assert "--dtype" in err and "float64" in err and "Traceback" not in err
    assert not BenchmarkRun.objects.exists()

    half = _launch(capsys, _argv(tiny_checkpoint_dir, "--dtype", "bfloat16"))
    assert BenchmarkRun.objects.get(id=half["id"]).parameters["dtype"] == "bfloat16"
    assert _launch(capsys, _argv(tiny_checkpoint_dir, "--dtype", "bfloat16"))["reused"] is True
    full = _launch(capsys, _argv(tiny_checkpoint_dir))  # float32, the default: another run
    assert full["reused"] is False and full["id"] != half["id"]
    assert BenchmarkRun.objects.get(id=full["id"]).dtype == "float32"

    # The reproducibility record carries the dtype, and replaying it finds the bfloat16 run.
    assert main(["benchmark", "export", half["id"], "--out", str(tmp_path / "export")]) == 0
    capsys.readouterr()
    record = json.loads((tmp_path / "export" / "reproducibility.json").read_text())
    assert record["parameters"]["dtype"] == "bfloat16"
    replayed = _launch(capsys, ["benchmark", "rerun", str(tmp_path / "export"), "--json"])
    assert replayed["reused"] is True and replayed["id"] == half["id"]


def test_the_service_refuses_an_unknown_dtype(media_root, tiny_checkpoint_dir):
    checkpoint = benchmarks.register_checkpoint(tiny_checkpoint_dir)
    dataset = make_dataset(media_root, n_tracks=2, write_audio=False)
    for bad in ("float64", "fp16", "", None):
        with pytest.raises(benchmarks.LaunchError, match="dtype"):
            benchmarks.launch_run(checkpoint=checkpoint, dataset=dataset, systems=["random"], n_excerpts=2, seed=0,
                                  embedder="logmel", dispatch=False, dtype=bad)
    assert not BenchmarkRun.objects.exists()


def test_float32_runs_keep_the_identity_they_had_before_the_parameter(media_root, tiny_checkpoint_dir):
    """A run recorded before `dtype` existed is found again by a float32 relaunch; any other
    dtype is another identity."""
    checkpoint = benchmarks.register_checkpoint(tiny_checkpoint_dir)
    dataset = make_dataset(media_root, n_tracks=3, write_audio=False)
    launches = {dtype: benchmarks.launch_run(checkpoint=checkpoint, dataset=dataset, systems=["random"],
                                             n_excerpts=2, seed=4, embedder="logmel", dispatch=False,
                                             dtype=dtype).run
                for dtype in ("float32", "bfloat16", "float16")}
    assert len({run.parameters_hash for run in launches.values()}) == 3
    before = {"checkpoint": checkpoint.content_hash, "dataset": dataset.manifest_hash, "systems": ["random"],
              "n_excerpts": 2, "seed": 4, "embedder": "logmel", "parameters": benchmarks.sampling_parameters()}
    assert launches["float32"].parameters_hash == sha256_bytes(json.dumps(before, sort_keys=True).encode())


def test_the_form_launches_in_the_chosen_dtype_and_the_run_page_shows_it(admin_client, media_root,
                                                                         tiny_checkpoint_dir, broker_url):
    form = {"checkpoint": str(tiny_checkpoint_dir), "dataset": "synthetic:10", "systems": ["random"],
            "excerpts": 2, "seed": 0, "embedder": "logmel"}
    refused = admin_client.post(reverse("evalsite:run_launch"), {**form, "dtype": "float64"})
    assert refused.status_code == 200 and b"float64 is not one of the available choices" in refused.content
    assert not BenchmarkRun.objects.exists()
    page = admin_client.post(reverse("evalsite:run_launch"), {**form, "dtype": "float16"}, follow=True)
    run = BenchmarkRun.objects.get()
    assert run.dtype == "float16" and '<span id="run-dtype">float16</span>' in page.content.decode()
    admin_client.post(reverse("evalsite:run_launch"), form)  # no dtype: float32, another run
    assert sorted(BenchmarkRun.objects.values_list("parameters__dtype", flat=True)) == ["float16", "float32"]


def _generate(checkpoint, dataset, broker_url, dtype: str) -> dict[str, tuple[np.ndarray, dict]]:
    """Launch a three-stage run in `dtype`, run its generation tasks here; {excerpt key: (audio, sidecar)}."""
    from hafm_core.audio import read_audio

    run = benchmarks.launch_run(checkpoint=checkpoint, dataset=dataset, systems=["three-stage"], n_excerpts=2,
                                seed=5, embedder="logmel", dispatch=False, dtype=dtype).run
    benchmarks.dispatch_run(run.id)
    for name, (run_id, clip_ids) in queued_tasks(broker_url):
        if name == "evalsite.benchmarks.generate_clips" and run_id == str(run.id):
            benchmark_work.generate_clips(run_id, clip_ids)
    clips = GeneratedClip.objects.filter(run=run).select_related("excerpt")
    assert [c.error for c in clips if c.status != "done"] == []
    return {c.excerpt.key: (read_audio(c.accompaniment_path)[0], c.sidecar) for c in clips}


def test_the_generation_tasks_use_the_runs_dtype_and_each_clip_records_it(media_root, broker_url,
                                                                          tiny_checkpoint_dir, tiny_weights_dir,
                                                                          monkeypatch):
    monkeypatch.setenv("HAFM_WEIGHTS_DIR", str(tiny_weights_dir))
    checkpoint = benchmarks.register_checkpoint(tiny_checkpoint_dir)
    dataset = make_dataset(media_root, n_tracks=2)
    full = _generate(checkpoint, dataset, broker_url, "float32")
    half = _generate(checkpoint, dataset, broker_url, "bfloat16")
    assert full.keys() == half.keys() and len(full) == 2
    for key in full:
        assert full[key][1]["dtype"] == "float32" and half[key][1]["dtype"] == "bfloat16"
    # Same seeds, other precision: the sampled tokens part, so the audio does too.
    assert not any(np.array_equal(full[key][0], half[key][0]) for key in full)


def _run_generation(checkpoint, dataset, broker_url, system: str) -> list[GeneratedClip]:
    run = benchmarks.launch_run(checkpoint=checkpoint, dataset=dataset, systems=[system], n_excerpts=2,
                                seed=6, embedder="logmel", dispatch=False).run
    benchmarks.dispatch_run(run.id)
    for name, (run_id, clip_ids) in queued_tasks(broker_url):
        if name == "evalsite.benchmarks.generate_clips" and run_id == str(run.id):
            benchmark_work.generate_clips(run_id, clip_ids)
    return list(GeneratedClip.objects.filter(run=run))


def test_the_generation_tasks_run_on_the_workers_device_and_record_it(media_root, broker_url, tiny_checkpoint_dir,
                                                                      tiny_weights_dir, monkeypatch):
    """A worker generates on its `HAFM_DEVICE` (else its GPU): the models are loaded there, each
    sidecar says where, and a device the worker does not have fails the clips with the reason."""
    import torch

    from evalsite.services import generation
    from hafm_core import systems

    monkeypatch.setenv("HAFM_WEIGHTS_DIR", str(tiny_weights_dir))
    checkpoint = benchmarks.register_checkpoint(tiny_checkpoint_dir)
    dataset = make_dataset(media_root, n_tracks=2)
    devices = []
    real_load = systems.load_system

    def spy(*args, **kwargs):
        devices.append(kwargs["device"])
        return real_load(*args, **kwargs)

    monkeypatch.setattr(systems, "load_system", spy)
    generation._system.cache_clear()
    monkeypatch.setenv("HAFM_DEVICE", "cpu")
    clips = _run_generation(checkpoint, dataset, broker_url, "two-stage")
    assert [c.status for c in clips] == ["done", "done"]
    assert devices == ["cpu"] and {c.sidecar["device"] for c in clips} == {"cpu"}
    if torch.cuda.is_available():
        return
    generation._system.cache_clear()
    monkeypatch.setenv("HAFM_DEVICE", "cuda")
    clips = _run_generation(checkpoint, make_dataset(media_root, n_tracks=3), broker_url, "two-stage")
    assert [c.status for c in clips] == ["failed", "failed"]
    assert all("HAFM_DEVICE='cuda': no CUDA GPU is visible" in c.error for c in clips)
    generation._system.cache_clear()
