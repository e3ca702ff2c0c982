"""A run as files: JSON + CSV, and a reproducibility record that `hafm benchmark rerun` replays.

    OUT/run.json               the run, FAD per system with CIs, the paired comparison, fit summaries
    OUT/systems.csv            one row per system
    OUT/clips.csv              one row per generated clip (status, seconds, paths, fit metrics)
    OUT/reproducibility.json   inputs with their content hashes, parameters, seeds, versions

Replaying a record checks that the checkpoint and the dataset still hash to what was
recorded, then launches with the same parameters: on the same site that is the same
parameters hash, so the existing live run is reused; on another site a new run is planned.
"""

from __future__ import annotations

import csv
import io
import json
import platform
from importlib import metadata
from pathlib import Path

from evalsite.models import BenchmarkRun, GeneratedClip, SystemResult
from hafm_core import constants
from hafm_core.data.files import write_bytes_atomic, write_json_atomic
from hafm_core.errors import CheckpointError, DatasetError, HafmError
from hafm_core.spreadsheet import neutralise_cell

RECORD_FORMAT = "hafm-benchmark-record/1"
VERSIONED_PACKAGES = ("hafm-bench", "torch", "numpy", "scipy", "transformers", "librosa", "django", "celery")
FIT_COLUMNS = ("status", "fit_score", "rhythm_score", "harmony_score", "beat_f_measure", "onset_xcorr_contrast",
               "beat_phase_agreement", "tempo_agreement", "chord_tone_ratio", "key_agreement", "harmony_status")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def reproducibility_record(run: BenchmarkRun) -> dict:
    return {
        "format": RECORD_FORMAT,
        "run": str(run.id),
        "inputs": {
            "checkpoint": {"path": run.checkpoint.path, "content_hash": run.checkpoint.content_hash,
                           "stages": run.checkpoint.stages, "config": run.checkpoint.config},
            "dataset": {"spec": run.dataset.source, "kind": run.dataset.kind,
                        "manifest_hash": run.dataset.manifest_hash},
        },
        "systems": run.systems,
        "n_excerpts": run.n_excerpts,
        "seed": run.seed,
        "embedder": run.embedder,
        "parameters": run.parameters,
        "parameters_hash": run.parameters_hash,
        "code_version": run.code_version,
        "versions": package_versions(),
        "clip_seeds": "sha256(f'{seed}:{excerpt key}')[:15] as an integer, the same for every system",
    }


def _result_json(result: SystemResult) -> dict:
    return {"system": result.system, "fad": result.fad, "fad_low": result.fad_low, "fad_high": result.fad_high,
            "fad_method": result.fad_method, "n_eval": result.n_eval, "n_background": result.n_background,
            "embedder": result.embedder, "protocol": result.protocol, "error": result.error, "fit": result.fit}


def run_json(run: BenchmarkRun) -> dict:
    from evalsite.selectors import run_progress

    return {
        "run": {"id": str(run.id), "status": run.status, "phase": run.phase, "error": run.error,
                "created": run.created.isoformat(),
                "started": run.started.isoformat() if run.started else None,
                "finished": run.finished.isoformat() if run.finished else None, "timings": run.timings},
        "progress": run_progress(run).to_json(),
        "systems": [_result_json(r) for r in SystemResult.objects.filter(run=run).order_by("system")],
        "comparisons": run.results,
        "record": reproducibility_record(run),
    }


def _csv_bytes(header: list[str], rows) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([neutralise_cell(cell) for cell in row] for row in rows)  # no spreadsheet formulas
    return buffer.getvalue().encode()


def export_run(run: BenchmarkRun, out_dir: str | Path) -> dict[str, Path]:
    """Write the four files (each atomically); returns their paths by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = run_json(run)
    paths = {"run": write_json_atomic(out / "run.json", data),
             "reproducibility": write_json_atomic(out / "reproducibility.json", data["record"])}
    system_rows = [[r["system"], r["fad"], r["fad_low"], r["fad_high"], r["n_eval"], r["n_background"],
                    r["embedder"], r["protocol"], r["error"],
                    *[(r["fit"].get("metrics", {}).get(m, {}) if r["fit"] else {}).get("mean")
                      for m in FIT_COLUMNS[1:]]]
                   for r in data["systems"]]
    paths["systems"] = write_bytes_atomic(out / "systems.csv", _csv_bytes(
        ["system", "fad", "fad_low", "fad_high", "n_eval", "n_background", "embedder", "protocol", "error",
         *[f"{m}_mean" for m in FIT_COLUMNS[1:]]], system_rows))
    clips = (GeneratedClip.objects.filter(run=run).order_by("excerpt__key", "system")
             .values_list("excerpt__key", "excerpt__track", "system", "seed", "status", "seconds",
                          "accompaniment_path", "mix_path", "error", "fit"))
    clip_rows = ([key, track, system, seed, status, seconds, accompaniment, mix, error,
                  *[(fit or {}).get(name) for name in FIT_COLUMNS]]
                 for key, track, system, seed, status, seconds, accompaniment, mix, error, fit in clips.iterator())
    paths["clips"] = write_bytes_atomic(out / "clips.csv", _csv_bytes(
        ["excerpt", "track", "system", "seed", "status", "seconds", "accompaniment_path", "mix_path", "error",
         *[f"fit_{name}" for name in FIT_COLUMNS]], clip_rows))
    return paths


def read_record(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "reproducibility.json"
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise HafmError(f"no reproducibility record at {path} (written by `hafm benchmark export`)") from error
    except json.JSONDecodeError as error:
        raise HafmError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        raise HafmError(f"{path} is not a benchmark reproducibility record (format {RECORD_FORMAT})")
    return record


def rerun(record_path: str | Path, created_by=None, queue: str | None = None, progress: bool = False):
    """Launch the run a record describes, after checking its inputs still hash the same."""
    from evalsite.services import benchmarks

    record = read_record(record_path)
    inputs = record["inputs"]
    checkpoint = benchmarks.register_checkpoint(inputs["checkpoint"]["path"],
                                                benchmarks.needed_stages(record["systems"]))
    if checkpoint.content_hash != inputs["checkpoint"]["content_hash"]:
        raise CheckpointError(f"checkpoint {inputs['checkpoint']['path']} has changed since the record was "
                              f"written (hash {checkpoint.content_hash[:12]}, recorded "
                              f"{inputs['checkpoint']['content_hash'][:12]})")
    dataset = benchmarks.register_dataset(inputs["dataset"]["spec"], progress=progress)
    if dataset.manifest_hash != inputs["dataset"]["manifest_hash"]:
        raise DatasetError(f"dataset {inputs['dataset']['spec']} prepares to a different manifest than "
                           f"recorded (hash {dataset.manifest_hash[:12]}, recorded "
                           f"{inputs['dataset']['manifest_hash'][:12]})")
    return benchmarks.launch_run(checkpoint=checkpoint, dataset=dataset, systems=record["systems"],
                                 n_excerpts=record["n_excerpts"], seed=record["seed"],
                                 embedder=record["embedder"], created_by=created_by, queue=queue,
                                 clips_per_task=int(record.get("parameters", {}).get(
                                     "clips_per_task", benchmarks.DEFAULT_CLIPS_PER_TASK)),
                                 dtype=record.get("parameters", {}).get("dtype", constants.DEFAULT_MODEL_DTYPE))
