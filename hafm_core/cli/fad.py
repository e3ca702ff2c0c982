"""`hafm fad BACKGROUND EVAL --embedder NAME [--json] [--ci] [--distributed]`.

Locally (default) the files are embedded in this process, no broker needed. With
`--distributed` the job is split into shards run by Celery workers (broker from
`CELERY_BROKER_URL`, results in the database) and this command waits, showing progress.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from hafm_core.cli.args import check_cache_dir, positive_float, positive_int, seed

HELP = "Frechet Audio Distance between two folders of audio (locally or on Celery workers)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("background", nargs="?", help="folder of reference audio (real accompaniments)")
    parser.add_argument("eval", nargs="?", help="folder of audio to measure (generated accompaniments)")
    parser.add_argument("--resume", metavar="JOB",
                        help="re-send the missing shards of distributed FAD job JOB and wait for it")
    parser.add_argument("--embedder", default="vggish", help="logmel, vggish, encodec or crepe (default vggish)")
    parser.add_argument("--protocol", help="embedder protocol, e.g. vggish-torchvggish (default: the first)")
    parser.add_argument("--ci", action="store_true", help="95%% jackknife confidence interval over songs")
    parser.add_argument("--fad-inf", action="store_true", help="also FAD-inf (subsets without replacement)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of FAD-inf subsets (default 0)")
    parser.add_argument("--device", help="torch device (default HAFM_DEVICE, else cuda when available)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    parser.add_argument("--distributed", action="store_true", help="run shards on Celery workers")
    parser.add_argument("--shard-files", type=positive_int, default=8,
                        help="files per shard with --distributed (default 8: a shard, one task, must "
                             "finish well inside the broker's visibility timeout, 300 s by default)")
    parser.add_argument("--timeout", type=positive_float, default=3600.0, help="seconds to wait with --distributed")
    parser.add_argument("--stall", type=positive_float, default=600.0,
                        help="with --distributed, give up (saying why) after this many seconds without "
                             "progress (default 600)")
    parser.add_argument("--compare-with", metavar="REPORT.json",
                        help="a previous `hafm fad --json` report: compare at equal n, else on FAD-inf "
                             "(needs --ci on both); other protocols or n without FAD-inf are an error")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _progress_bar(total: int, what: str):
    from tqdm import tqdm

    return tqdm(total=total, unit="file", desc=what, file=sys.stderr, mininterval=0.5, leave=False)


def _run_local(args) -> dict:
    from hafm_core.fad.cache import EmbeddingCache
    from hafm_core.fad.compute import compute_fad
    from hafm_core.fad.embedders import load_embedder
    from hafm_core.fad.files import list_audio_files

    total = len(list_audio_files(args.background, "background")) + len(list_audio_files(args.eval, "eval"))
    embedder = load_embedder(args.embedder, args.protocol, args.device)
    with _progress_bar(total, f"embedding ({embedder.protocol})") as bar:
        report = compute_fad(args.background, args.eval, embedder,
                             cache=None if args.no_cache else EmbeddingCache(),
                             with_ci=args.ci, with_fad_inf=args.fad_inf, seed=args.seed,
                             progress=bar.update)
    return {**report.to_json(), "mode": "local"}


def _run_distributed(args) -> dict:
    # The Django side is imported only here: hafm_core stays free of Django.
    client = importlib.import_module("evalsite.fad_client")
    if args.resume:
        return client.resume_and_wait(args.resume, args.timeout, _progress_bar, args.stall)
    return client.run_and_wait(args.background, args.eval, args.embedder, args.protocol,
                               with_ci=args.ci or args.fad_inf, with_fad_inf=args.fad_inf,
                               seed=args.seed, shard_files=args.shard_files, timeout_s=args.timeout,
                               progress_bar=_progress_bar, stall_s=args.stall)


def format_report(data: dict) -> str:
    lines = [f"FAD {data['fad']:.4f}  ({data['embedder']}, protocol {data['protocol']}, {data['mode']})"]
    ci = data.get("ci")
    if ci:
        lines.append(f"95% CI of {ci['quantity']}: {ci['low']:.4f} to {ci['high']:.4f} ({ci['method']}); "
                     "it does not cover the true, n-free FAD")
    inf_ci = data.get("fad_inf_ci")
    if inf_ci:
        lines.append(f"95% CI of {inf_ci['quantity']}: {inf_ci['estimate']:.4f}, {inf_ci['low']:.4f} to "
                     f"{inf_ci['high']:.4f} ({inf_ci['method']})")
    inf = data.get("fad_inf")
    if inf:
        lines.append(f"FAD-inf {inf['value']:.4f} (slope {inf['slope']:.3f}, R^2 {inf['r_squared']:.3f}, "
                     f"subset sizes {inf['sizes'][0]}..{inf['sizes'][-1]}, seed {inf['seed']})")
    lines.append(f"background {data['n_background']} files ({data['n_background_frames']} frames), "
                 f"eval {data['n_eval']} files ({data['n_eval_frames']} frames); compare FADs only at equal n")
    lines.append(f"weights {data['weights_hash'][:12]}, code {data['code_version']}")
    comparison = data.get("comparison")
    if comparison:
        lines.append(f"against the previous report, on {comparison['on']}: {comparison['current']:.4f} vs "
                     f"{comparison['previous']:.4f} ({comparison['difference']:+.4f})")
    return "\n".join(lines)


def _previous_report(path: str) -> dict:
    from hafm_core.errors import DatasetError

    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as error:
        raise DatasetError(f"--compare-with {path}: cannot read a `hafm fad --json` report ({error})") from None
    if not isinstance(data, dict) or not {"fad", "protocol", "n_background", "n_eval"} <= data.keys():
        raise DatasetError(f"--compare-with {path}: not a `hafm fad --json` report")
    return data


def run(args) -> int:
    check_cache_dir(not args.no_cache)
    from hafm_core.errors import ConfigError
    from hafm_core.fad.compare import compare_reports

    if args.resume is None and (args.background is None or args.eval is None):
        raise ConfigError("give BACKGROUND and EVAL folders, or --resume JOB")
    if args.resume is not None and (args.background is not None or not args.distributed):
        raise ConfigError("--resume JOB takes no folders and needs --distributed")
    previous = _previous_report(args.compare_with) if args.compare_with else None
    data = _run_distributed(args) if args.distributed else _run_local(args)
    if previous is not None:
        data["comparison"] = compare_reports(data, previous)
    print(json.dumps(data) if args.json else format_report(data))
    return 0
