"""`hafm analyze`: statistics of a listening study from its CSV exports.

    hafm analyze preferences.csv [--ratings ratings.csv] [--participants participants.csv]
                 [--exclude-failed-catch [MIN_ACCURACY]] [--exclude-failed-screening] [--exclude-flagged]
                 [--fad fad.json] [--metrics metrics.csv ... [--metric-attribute METRIC=ATTRIBUTE ...]]
                 [--json | --html report.html]

`--json` prints one object: `pairs` (system, opponent, n, wins, rate, ci_low, ci_high,
p_value: the two-way clustered interval and test; p_holm, method, unit; ci_low_wilson,
ci_high_wilson, p_value_binomial: the independent-judgment figures; rate = wins / n of `system`
against `opponent` over both side orders), the other statistics, `paper_comparison`, `methods`
and the `exclusions` applied. `--html` writes an offline report.
`--metrics` takes fit metrics in long format (`excerpt, system, metric, value`, as `hafm fit
--csv` writes them; several files are concatenated, e.g. one per system) and adds
`metric_agreement`: Spearman's rho of each metric with the mean rating of its attribute over
(excerpt, system) items, with an excerpt-bootstrap and a Fisher-z CI. Label columns are read
as text, so excerpt `0001` stays `0001`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hafm_core.cli.args import (
    check_output_file,
    positive_int,
    probability_open,
    seed,
    unit_interval,
)

HELP = "statistics and an offline report of a listening study (preferences.csv, ratings.csv)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("preferences", type=Path, help="preferences.csv export")
    parser.add_argument("--ratings", type=Path, help="ratings.csv export")
    parser.add_argument("--participants", type=Path, help="participants.csv export (screening, catch accuracy)")
    parser.add_argument("--exclude-failed-catch", type=unit_interval, nargs="?", const=1.0, default=None,
                        metavar="MIN_ACCURACY",
                        help="exclude listeners whose catch-trial accuracy is below MIN_ACCURACY "
                             "(default when given without a value: 1.0, any failed catch trial)")
    parser.add_argument("--exclude-failed-screening", action="store_true",
                        help="exclude listeners who failed the headphone screening (needs --participants)")
    parser.add_argument("--completed-only", action="store_true",
                        help="keep only listeners who completed the study (needs --participants)")
    parser.add_argument("--exclude-flagged", action="store_true",
                        help="exclude listeners with any true flag_* column in participants.csv (too fast, "
                             "no audio, duplicate answer sequence; needs --participants)")
    parser.add_argument("--reference", default="ground-truth", help="reference system (default ground-truth)")
    parser.add_argument("--margin", type=unit_interval, default=0.05, help="non-inferiority margin (default 0.05)")
    parser.add_argument("--target-rate", type=probability_open, default=0.55,
                        help="preference rate the study should detect, for power (default 0.55)")
    parser.add_argument("--n-boot", type=positive_int, default=1000, help="bootstrap replicates (default 1000)")
    parser.add_argument("--seed", type=seed, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--no-mixed-model", action="store_true", help="skip the mixed-effects model")
    parser.add_argument("--fad", type=Path, help="JSON with FAD per system for the paper comparison")
    parser.add_argument("--metrics", type=Path, nargs="+", metavar="METRICS_CSV",
                        help="fit metrics (excerpt, system, metric, value; `hafm fit --csv`) to correlate with "
                             "the ratings (needs --ratings)")
    parser.add_argument("--metric-attribute", action="append", metavar="METRIC=ATTRIBUTE",
                        help="pair a metric with a rated attribute (repeatable; replaces the default pairs "
                             "rhythm -> rhythmic alignment, harmony -> harmonic compatibility, "
                             "fit_score -> overall coherence)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    output.add_argument("--html", type=Path, metavar="REPORT", help="write an offline HTML report")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --html REPORT")


LABEL_COLUMNS = ("participant", "excerpt", "system", "system_left", "system_right", "chosen", "attribute",
                 "metric", "trial", "study")


def _read_csv(path: Path, what: str):
    import pandas as pd

    from analysis.stats import AnalysisInputError

    path = Path(path)
    if path.is_dir():
        raise AnalysisInputError(f"{what}: {path} is a directory; give the CSV file inside it")
    try:
        return pd.read_csv(path, dtype={column: str for column in LABEL_COLUMNS})
    except FileNotFoundError:
        raise AnalysisInputError(f"{what}: file not found: {path}") from None
    except OSError as error:  # permission denied, a device, an I/O error
        raise AnalysisInputError(f"{what}: cannot read {path} ({error.strerror or error})") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise AnalysisInputError(f"{what}: cannot read {path} as CSV ({error})") from None


def _read_fad(path: Path) -> dict:
    from analysis.stats import AnalysisInputError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AnalysisInputError(f"--fad: file not found: {path}") from None
    except json.JSONDecodeError as error:
        raise AnalysisInputError(f"--fad: {path} is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise AnalysisInputError(f"--fad: {path} must hold a JSON object of FAD per system")
    return data


def _metric_attributes(pairs: list[str] | None) -> tuple[tuple[str, str], ...] | None:
    from analysis.stats import AnalysisInputError

    if not pairs:
        return None
    out = []
    for text in pairs:
        metric, sep, attribute = text.partition("=")
        if not sep or not metric.strip() or not attribute.strip():
            raise AnalysisInputError(f"--metric-attribute: expected METRIC=ATTRIBUTE, got {text!r}")
        out.append((metric.strip(), attribute.strip()))
    return tuple(out)


def _ci(low, high) -> str:
    if low is None or low != low:  # NaN
        return "not estimable"
    return f"[{low:.3f}, {high:.3f}]"


def _summary(analysis) -> str:
    """The console summary: headline figures with their method named, integers as integers,
    p-values with their floor."""
    from analysis.formatting import format_count, format_p
    from analysis.stats.clustered import RATE_METHOD, UNIT

    lines = [f"Preferences: 95% CI and p (against 0.5) by {RATE_METHOD}; clusters: {UNIT};",
             f"p Holm: Holm across the {len(analysis.pairs)} preference pairs. Secondary (independent judgments): "
             "Wilson CI, exact binomial p.",
             f"{'pair':32s} {'n':>6s}  {'rate':5s}  {'95% CI (clustered)':18s}  {'p':>8s}  {'p Holm':>8s}  "
             f"{'95% CI (Wilson)':16s}  {'p (binomial)':>12s}"]
    for row in analysis.pairs.itertuples(index=False):
        lines.append(f"{row.system + ' vs ' + row.opponent:32s} {format_count(row.n):>6s}  {row.rate:.3f}  "
                     f"{_ci(row.ci_low, row.ci_high):18s}  {format_p(row.p_value):>8s}  {format_p(row.p_holm):>8s}  "
                     f"{_ci(row.ci_low_wilson, row.ci_high_wilson):16s}  {format_p(row.p_value_binomial):>12s}")
    for row in analysis.non_inferiority.itertuples(index=False):
        verdict = {True: "non-inferior", False: "not shown non-inferior"}.get(row.non_inferior, "not estimable")
        lower = "not estimable" if row.lower_bound != row.lower_bound else f"{row.lower_bound:.3f}"
        lines.append(f"non-inferiority {row.system} vs {row.reference} (margin {row.margin}): {verdict}; "
                     f"one-sided clustered lower bound {lower}, p {format_p(row.p_value)} "
                     f"(binomial, independent judgments: {row.lower_bound_binomial:.3f})")
    for row in analysis.rating_comparisons.itertuples(index=False):
        lines.append(f"rating {row.attribute}: {row.system} - {row.opponent} = {row.mean_difference:+.3f} "
                     f"{_ci(row.ci_low, row.ci_high)} (two-way clustered), p Holm {format_p(row.p_holm)} "
                     f"(family: all {len(analysis.rating_comparisons)} rating comparisons)")
    after = analysis.exclusions["after"]
    lines.append(f"{after['judgments']} judgments from {after['participants']} listeners; "
                 f"{analysis.exclusions['catch_trials_set_aside']} catch trials set aside; "
                 f"{len(analysis.exclusions['excluded_participants'])} listeners excluded")
    for row in analysis.metric_agreement.itertuples(index=False):
        if row.note.startswith("not estimable"):
            continue
        lines.append(f"{row.metric} vs {row.attribute}: Spearman rho {row.rho:.3f}, 95% CI (excerpt bootstrap) "
                     f"[{row.ci_low:.3f}, {row.ci_high:.3f}], n={row.n_items} items / {row.n_excerpts} excerpts")
    lines.extend(f"note: {note}" for note in analysis.notes)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from analysis.report import render_report, write_report
    from analysis.stats.exclusions import ExclusionRules
    from analysis.stats.study import AnalysisOptions, analyze_study

    if args.html:
        check_output_file(args.html, overwrite=args.overwrite, what="--html")
    preferences = _read_csv(args.preferences, "preferences")
    ratings = _read_csv(args.ratings, "ratings") if args.ratings else None
    participants = _read_csv(args.participants, "participants") if args.participants else None
    rules = ExclusionRules(min_catch_accuracy=args.exclude_failed_catch,
                           exclude_failed_screening=args.exclude_failed_screening,
                           completed_only=args.completed_only, exclude_flagged=args.exclude_flagged)
    options = AnalysisOptions(reference=args.reference, margin=args.margin, target_rate=args.target_rate,
                              n_boot=args.n_boot, seed=args.seed, mixed_model=not args.no_mixed_model,
                              metric_attributes=_metric_attributes(args.metric_attribute))
    fad = _read_fad(args.fad) if args.fad else None
    metrics = None
    if args.metrics:
        import pandas as pd

        from analysis.stats import AnalysisInputError

        if ratings is None:
            raise AnalysisInputError("--metrics needs --ratings: the metrics are correlated with listener ratings")
        metrics = pd.concat([_read_csv(path, "metrics") for path in args.metrics], ignore_index=True)
    analysis = analyze_study(preferences, ratings, participants, rules, options, fad, metrics)
    if args.json:
        json.dump(analysis.to_dict(), sys.stdout, allow_nan=False)
        sys.stdout.write("\n")
    elif args.html:
        path = write_report(args.html, render_report(analysis))
        print(_summary(analysis))
        print(f"report written to {path}")
    else:
        print(_summary(analysis))
    return 0
