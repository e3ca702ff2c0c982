"""`hafm fit VOCALS ACCOMPANIMENTS [--json]`: musical fit of accompaniments to their vocals.

Files are paired by their path relative to each folder without the suffix
(`VOCALS/song/0001.wav` with `ACCOMPANIMENTS/song/0001.flac`); unmatched names are reported.
Each pair gets a status and, when `ok`, the metrics of `hafm_core.fit`; the summary gives the
mean of each metric over all excerpts, an excerpt that could not be measured counting as the
metric's worst value, with a 95% percentile-bootstrap CI over excerpts, and beside it the
failure rate and the mean over measured excerpts only (so failing never raises a mean).
`--csv METRICS_CSV` also writes the ok excerpts' metrics in long format, one row per
(excerpt, metric): `excerpt, system, metric, value`, with excerpt the pairing name (the file
stem; `song/0001` in nested folders) and system `--system` (default: the accompaniments
folder's name). That is the input of `hafm analyze --metrics`, which correlates each metric
with the listeners' ratings of the matching attribute.
The vocals' pitch tracks are kept under `HAFM_CACHE_DIR/fit-pitch` (`--no-cache`: not read
or written), so fitting another system's folder against the same vocals skips CREPE.
Exit 0 when at least one excerpt was measured, 1 when none was, 2 for bad folders.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hafm_core.cli.args import check_cache_dir, check_output_file, positive_int, seed

HELP = "rhythm and harmony fit of accompaniments to vocals, over two folders paired by file name"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("vocals", help="folder of vocal excerpts")
    parser.add_argument("accompaniments", help="folder of accompaniments, same file names as the vocals")
    parser.add_argument("--device", help="torch device for CREPE (default HAFM_DEVICE, else cuda when available)")
    parser.add_argument("--resamples", type=positive_int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument("--seed", type=seed, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--csv", type=Path, metavar="METRICS_CSV",
                        help="also write the metrics in long format (excerpt, system, metric, value) "
                             "for `hafm analyze --metrics`")
    parser.add_argument("--system", help="system column of --csv (default: the accompaniments folder's name)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing METRICS_CSV")
    parser.add_argument("--no-cache", action="store_true",
                        help="do not read or write the vocal pitch cache (HAFM_CACHE_DIR/fit-pitch)")


METRICS_CSV_COLUMNS = ("excerpt", "system", "metric", "value")


def write_metrics_csv(path: Path, results, system: str) -> int:
    """Write one row per (ok excerpt, metric) atomically; returns the number of rows.
    Excerpts whose status is not ok have no metrics and no rows (their status is in the JSON;
    the summary's means count them as the worst value)."""
    import csv

    from hafm_core.data.files import atomic_output
    from hafm_core.fit import METRIC_NAMES
    from hafm_core.spreadsheet import neutralise_cell

    rows = [(neutralise_cell(result.name), neutralise_cell(system), metric, repr(float(getattr(result, metric))))
            for result in results if result.ok for metric in METRIC_NAMES]
    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(METRICS_CSV_COLUMNS)
        writer.writerows(rows)
    return len(rows)


def format_report(data: dict) -> str:
    lines = []
    for result in data["results"]:
        if result["status"] == "ok":
            lines.append(f"{result['name']}: fit {result['fit_score']:.3f} (rhythm {result['rhythm_score']:.3f}, "
                         f"harmony {result['harmony_score']:.3f})")
        else:
            lines.append(f"{result['name']}: {result['status']}: {result['detail']}")
    summary = data["summary"]
    lines.append(f"{summary['n_ok']} of {summary['n_excerpts']} excerpts measured "
                 f"(failure rate {summary['failure_rate']:.1%}); "
                 + ", ".join(f"{status} {count}" for status, count in sorted(summary["statuses"].items())))
    lines.append("  means count a failed excerpt as the worst value; 'ok only' leaves them out")
    for name, stats in summary["metrics"].items():
        if stats["mean"] is None:
            continue
        ci = (f"  95% CI {stats['ci_low']:.3f} to {stats['ci_high']:.3f}" if stats["ci_low"] is not None else "")
        ok_only = f"  (ok only {stats['mean_ok']:.3f})" if stats["mean_ok"] is not None else ""
        lines.append(f"  {name:<24} {stats['mean']:.3f}{ci}{ok_only}")
    for role in ("vocals_only", "accompaniments_only"):
        if data["unmatched"][role]:
            lines.append(f"unmatched ({role.replace('_', ' ')}): {', '.join(data['unmatched'][role])}")
    if "metrics_csv" in data:
        written = data["metrics_csv"]
        lines.append(f"metrics of system {written['system']!r} written to {written['path']} ({written['rows']} rows)")
    return "\n".join(lines)


def run(args) -> int:
    from dataclasses import asdict

    from tqdm import tqdm

    from hafm_core.errors import DatasetError
    from hafm_core.fit import DEFAULT_CONFIG, fit_path_pairs, pair_folders, summarize
    from hafm_core.fit.pitch_cache import PitchCache
    from hafm_core.provenance import code_version

    check_cache_dir()  # librosa's compiled code and the vocal pitch cache live under HAFM_CACHE_DIR
    if args.csv:
        check_output_file(args.csv, overwrite=args.overwrite, what="--csv")
    pairing = pair_folders(args.vocals, args.accompaniments)
    if not pairing.pairs:
        raise DatasetError(f"no file name of {args.vocals} matches one of {args.accompaniments} "
                           f"({len(pairing.vocals_only)} vocals, {len(pairing.accompaniments_only)} accompaniments)")
    for role, names in (("vocal", pairing.vocals_only), ("accompaniment", pairing.accompaniments_only)):
        if names:
            print(f"hafm fit: {len(names)} {role} file(s) without a partner: {', '.join(names[:10])}"
                  + (" ..." if len(names) > 10 else ""), file=sys.stderr)

    model = None
    if args.device:
        from hafm_core.crepe import CrepeTiny

        model = CrepeTiny.load(args.device)
    with tqdm(total=len(pairing.pairs), unit="excerpt", desc="fit", file=sys.stderr,
              mininterval=0.5, leave=False) as bar:
        results = fit_path_pairs([(v, a) for _, v, a in pairing.pairs], names=[n for n, _, _ in pairing.pairs],
                                 model=model, progress=bar.update,
                                 pitch_cache=None if args.no_cache else PitchCache())
    data = {
        "vocals": str(args.vocals),
        "accompaniments": str(args.accompaniments),
        "n_pairs": len(pairing.pairs),
        "unmatched": {"vocals_only": pairing.vocals_only, "accompaniments_only": pairing.accompaniments_only},
        "results": [result.to_dict() for result in results],
        "summary": summarize(results, n_resamples=args.resamples, seed=args.seed),
        "config": asdict(DEFAULT_CONFIG),
        "code_version": code_version(),
    }
    if args.csv:
        system = args.system or Path(args.accompaniments).resolve().name
        data["metrics_csv"] = {"path": str(args.csv), "system": system,
                               "rows": write_metrics_csv(args.csv, results, system)}
    print(json.dumps(data, allow_nan=False) if args.json else format_report(data))
    return 0 if data["summary"]["n_ok"] else 1
