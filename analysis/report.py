"""The offline HTML report of a study: every table and plot in one file, plotly.js inlined.

`render_report` returns the HTML text; `write_report` writes it atomically. The first figure
carries plotly.js (`include_plotlyjs=True`), so the file opens without a network.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from analysis import figures
from analysis.formatting import html_table
from analysis.stats.clustered import RATE_METHOD, UNIT
from analysis.stats.mixed import METHOD, mixed_table_for_display
from analysis.stats.study import StudyAnalysis, paper_comparison

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.85rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.table-note { color: #555; font-size: 0.8rem; margin: 0.2rem 0; }
.note { background: #fff8e0; padding: 0.5rem 1rem; border-left: 4px solid #e0b000; }
"""


LISTENER_ROWS = 50


def _table(df: pd.DataFrame, columns: list[str] | None = None, caption: str = "", max_rows: int | None = None) -> str:
    return html_table(df, columns, caption=caption, max_rows=max_rows, css_class="dataframe",
                      empty="<p><em>none</em></p>")


def table_captions(analysis: StudyAnalysis) -> dict[str, str]:
    """What each table's numbers are: method, unit of resampling, multiplicity family."""
    n_pairs = len(analysis.pairs)
    n_rating = len(analysis.rating_comparisons)
    return {
        "pairs": (f"Headline: rate at which `system` was preferred over `opponent`; ci_low/ci_high and p_value "
                  f"(against 0.5) from the two-way cluster-robust variance; p_holm: Holm across the {n_pairs} "
                  "preference pairs of this table (one family). Secondary, assuming independent judgments: "
                  "ci_low_wilson/ci_high_wilson (Wilson) and p_value_binomial (exact binomial)."),
        "non_inferiority": ("Verdict (non_inferior) from the one-sided two-way clustered bound; "
                            "lower_bound_binomial/p_value_binomial (Clopper-Pearson, exact binomial) assume "
                            "independent judgments and are secondary."),
        "mixed": ("Secondary: rate for a typical listener and excerpt (a conditional estimand, not the "
                  "population rate of the headline); p_holm: Holm across the pairs of this table."),
        "side_bias": ("Share of left choices: Wilson CI and exact binomial test, judgments treated as independent "
                      "(a screening check, not corrected for multiplicity)."),
        "bradley_terry": "Scores are log-odds against the reference of their part; the reference has no CI.",
        "power": "Power against the target rate with the normal approximation, inflated by each pair's "
                 "two-way clustered design effect.",
        "rating_comparisons": (f"Headline: pairwise differences of mean ratings; p_holm: Holm across all "
                               f"{n_rating} rating comparisons (every attribute and pair, one family)."),
        "rating_summary": "Means with two-way clustered 95% CIs (listener and excerpt).",
        "friedman": "Secondary, not corrected across attributes.",
        "wilcoxon": "Secondary; p_holm: Holm across the pairs of one attribute.",
        "agreement": "Method: Krippendorff's alpha (ordinal); units: (excerpt, system) rated by several listeners.",
        "catch": "Wilson CI per catch kind, trials treated as independent.",
        "listeners": ("One row per listener, least agreeing first; side_p_value: exact binomial of left choices "
                      "(a screening check, uncorrected); response times measured by the server."),
        "metric_agreement": METRIC_AGREEMENT_TEXT,
    }


def analysis_tables_html(analysis: StudyAnalysis, listener_rows: int = LISTENER_ROWS,
                         css_class: str = "dataframe", empty: str = "<p><em>none</em></p>") -> dict[str, str]:
    """Every table of a study as captioned HTML, shared by the report and the dashboards;
    an empty table gives `empty`."""
    captions = table_captions(analysis)

    def table(name, frame, columns=None, max_rows=None):
        return html_table(frame, columns, caption=captions[name], max_rows=max_rows, css_class=css_class,
                          empty=empty)

    return {
        "pairs": table("pairs", analysis.pairs, PAIR_COLUMNS),
        "non_inferiority": table("non_inferiority", analysis.non_inferiority),
        "mixed": table("mixed", mixed_table_for_display(analysis.mixed)),
        "side_bias": table("side_bias", analysis.side_bias),
        "bradley_terry": table("bradley_terry", analysis.bradley_terry),
        "power": table("power", analysis.power, ["system", "opponent", "n", "design_effect", "power", "n_required",
                                                 "n_required_clustered", "judgments_needed"]),
        "rating_comparisons": table("rating_comparisons", analysis.rating_comparisons),
        "rating_summary": table("rating_summary", analysis.rating_summary),
        "friedman": table("friedman", analysis.friedman),
        "wilcoxon": table("wilcoxon", analysis.wilcoxon),
        "agreement": table("agreement", analysis.agreement),
        "metric_agreement": table("metric_agreement", analysis.metric_agreement, METRIC_AGREEMENT_COLUMNS),
        "catch": table("catch", analysis.catch),
        "listeners": table("listeners", analysis.listeners, max_rows=listener_rows),
    }


PAIR_COLUMNS = ["system", "opponent", "n", "wins", "rate", "ci_low", "ci_high", "p_value", "p_holm", "method",
                "unit", "g_listeners", "g_excerpts", "design_effect", "ci_low_wilson", "ci_high_wilson",
                "p_value_binomial", "note"]


def _paper_section(analysis: StudyAnalysis) -> str:
    comparison = paper_comparison(analysis)
    paper = comparison["paper"]
    rows = []
    gt = comparison.get("preference_vs_ground_truth")
    rows.append(("Preference three-stage vs ground truth", f"{paper['preference_vs_ground_truth']:.1%}",
                 preference_cell(gt)))
    rnd = comparison.get("preference_vs_random")
    rows.append(("Preference three-stage vs random", "reported as a win", preference_cell(rnd)))
    fad = comparison.get("fad", {})

    def fad_cell(name):
        entry = fad.get(name)
        if not entry:
            return "not given (--fad)"
        ci = f" [{entry['ci_low']:.3g}, {entry['ci_high']:.3g}]" if "ci_low" in entry and "ci_high" in entry else ""
        return f"{entry['fad']:.3g}{ci}"

    rows.append(("FAD three-stage", f"{paper['fad_three_stage']}", fad_cell("three-stage")))
    rows.append(("FAD two-stage", f"{paper['fad_two_stage']}", fad_cell("two-stage")))
    improvement = fad.get("relative_improvement")
    ours = "not given (--fad)"
    if improvement:
        ci = (f" [{improvement['ci_low']:.1%}, {improvement['ci_high']:.1%}]"
              if "ci_low" in improvement and "ci_high" in improvement else " (no CI given)")
        ours = f"{improvement['value']:.1%}{ci}"
    rows.append(("Relative FAD improvement, three- vs two-stage", f"{paper['relative_improvement']:.1%}", ours))
    body = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td><td>{html.escape(c)}</td></tr>"
                   for a, b, c in rows)
    verdict = f"<p>{html.escape(paper_verdict(gt))}</p>" if gt else ""
    return (f"<table><tr><th>figure</th><th>paper</th><th>ours</th></tr>{body}</table>{verdict}"
            f'<p class="table-note">Preference CIs: {html.escape(RATE_METHOD)}; unit: {html.escape(UNIT)}.</p>')


def preference_cell(entry: dict | None) -> str:
    """'51.0% [47.5%, 54.6%] (two-way clustered), n=1200' or why there is no interval."""
    if not entry:
        return "not measured"
    if entry["ci_low"] is None:
        return f"{entry['rate']:.1%}, n={entry['n']}; CI {entry['note'] or 'not estimable'}"
    return f"{entry['rate']:.1%} [{entry['ci_low']:.1%}, {entry['ci_high']:.1%}] (two-way clustered), n={entry['n']}"


def paper_verdict(gt: dict) -> str:
    """The sentence comparing the paper's 51.5% with our clustered CI."""
    if gt.get("paper_inside_ci") is None:
        return "The paper's 51.5% cannot be compared: our clustered CI is not estimable."
    text = ("The paper's 51.5% lies inside our 95% CI (two-way clustered)." if gt["paper_inside_ci"]
            else "The paper's 51.5% lies outside our 95% CI (two-way clustered).")
    if gt["ci_low"] <= 0.5 <= gt["ci_high"]:
        text += " A CI containing 0.5 means the preference cannot be told from chance."
    return text


METRIC_AGREEMENT_COLUMNS = ["metric", "attribute", "n_items", "n_excerpts", "n_ratings", "rho", "ci_low", "ci_high",
                            "fisher_low", "fisher_high", "p_value", "note"]
METRIC_AGREEMENT_TEXT = (
    "Spearman's rank correlation between each objective fit metric and the mean listener rating of "
    "the matching attribute, over (excerpt, system) items. CI: percentile cluster bootstrap over "
    "excerpts (the accompaniments of one vocal are not independent), the one to quote; the Fisher-z "
    "interval (Bonett-Wright variance) and the p-value treat items as independent.")


def metric_agreement_section(analysis: StudyAnalysis) -> str:
    """The report's section on fit metrics against ratings; empty without metrics."""
    if len(analysis.metric_agreement) == 0:
        return ""
    return (f"<h2>Objective fit metrics against listener ratings</h2><p>{html.escape(METRIC_AGREEMENT_TEXT)}</p>"
            + _table(analysis.metric_agreement, METRIC_AGREEMENT_COLUMNS))


def render_report(analysis: StudyAnalysis, title: str = "HAFM listening study report") -> str:
    """The complete HTML document."""
    plots = [figures.preference_bars(analysis.pairs),
             figures.bradley_terry_scores(analysis.bradley_terry),
             figures.study_progress(analysis.power),
             figures.listener_quality(analysis.listeners)]
    if len(analysis.rating_distribution):
        plots += [figures.rating_means(analysis.rating_summary),
                  figures.rating_distributions(analysis.rating_distribution)]
    rendered = [fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(plots)]
    options = analysis.options
    tables = analysis_tables_html(analysis)
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Exclusions</h2>",
        f"<pre>{html.escape(json.dumps(analysis.exclusions, indent=2))}</pre>",
        "".join(f'<p class="note">{html.escape(n)}</p>' for n in analysis.notes),
        "<h2>Preferences</h2>", rendered[0],
        f"<p>Headline intervals and tests: {html.escape(RATE_METHOD)}; unit of clustering: {html.escape(UNIT)}. "
        "Wilson intervals and exact binomial p-values assume independent judgments and are shown only as "
        "labelled secondary figures.</p>",
        tables["pairs"],
        f"<h3>Non-inferiority against {html.escape(options.reference)} (margin {options.margin})</h3>",
        tables["non_inferiority"],
        "<h3>Mixed-effects logistic model (secondary)</h3>",
        f"<p>{html.escape(METHOD)}.</p>" if len(analysis.mixed) else "",
        tables["mixed"],
        "<h3>Left/right bias</h3>", tables["side_bias"],
        "<h2>Bradley-Terry scores</h2>", rendered[1], tables["bradley_terry"],
        "<h2>Sample size and power</h2>", rendered[2],
        f"<p>Target: detect a preference of {options.target_rate:.0%} against 50% with power "
        f"{options.power} at alpha {options.alpha}, inflated by each pair's design effect.</p>",
        tables["power"],
        "<h2>Ratings</h2>", *rendered[4:],
        "<h3>Pairwise differences (two-way clustered, Holm across all rating comparisons)</h3>",
        tables["rating_comparisons"],
        "<h3>Means</h3>", tables["rating_summary"],
        "<h3>Friedman test and Kendall's W (secondary)</h3>", tables["friedman"],
        "<h3>Pairwise Wilcoxon signed-rank (secondary)</h3>", tables["wilcoxon"],
        "<h3>Rater agreement (Krippendorff's alpha)</h3>", tables["agreement"],
        metric_agreement_section(analysis),
        "<h2>Quality control</h2>", "<h3>Catch trials</h3>", tables["catch"],
        "<h3>Listeners</h3>", rendered[3], tables["listeners"],
        "<h2>Paper comparison</h2>", _paper_section(analysis),
        "<h2>Options</h2>", f"<pre>{html.escape(json.dumps(analysis.to_dict()['options'], indent=2))}</pre>",
    ]
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_STYLE}</style></head><body>{''.join(sections)}</body></html>")


def write_report(path: Path, text: str) -> Path:
    """Write `text` to `path` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
