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
from analysis.stats.mixed import METHOD, mixed_table_for_display
from analysis.stats.study import StudyAnalysis, paper_comparison

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.85rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.note { background: #fff8e0; padding: 0.5rem 1rem; border-left: 4px solid #e0b000; }
"""


def _table(df: pd.DataFrame, columns: list[str] | None = None) -> str:
    if df is None or len(df) == 0:
        return "<p><em>none</em></p>"
    shown = df[[c for c in columns if c in df.columns]] if columns else df
    return shown.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0, na_rep="")


def _paper_section(analysis: StudyAnalysis) -> str:
    comparison = paper_comparison(analysis)
    paper = comparison["paper"]
    rows = []
    gt = comparison.get("preference_vs_ground_truth")
    rows.append(("Preference three-stage vs ground truth", f"{paper['preference_vs_ground_truth']:.1%}",
                 f"{gt['rate']:.1%} [{gt['ci_low']:.1%}, {gt['ci_high']:.1%}], n={gt['n']}" if gt else "not measured"))
    rnd = comparison.get("preference_vs_random")
    rows.append(("Preference three-stage vs random", "reported as a win",
                 f"{rnd['rate']:.1%} [{rnd['ci_low']:.1%}, {rnd['ci_high']:.1%}], n={rnd['n']}" if rnd else "not measured"))
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
    verdict = ""
    if gt:
        verdict = ("<p>The paper's 51.5% lies inside our 95% CI." if gt.get("paper_inside_ci")
                   else "<p>The paper's 51.5% lies outside our 95% CI.") + (
            " A CI containing 0.5 means the preference cannot be told from chance.</p>"
            if gt["ci_low"] <= 0.5 <= gt["ci_high"] else "</p>")
    return f"<table><tr><th>figure</th><th>paper</th><th>ours</th></tr>{body}</table>{verdict}"


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
    plots = [figures.preference_bars(analysis.pairs, analysis.cluster),
             figures.bradley_terry_scores(analysis.bradley_terry),
             figures.study_progress(analysis.power),
             figures.listener_quality(analysis.listeners)]
    if len(analysis.rating_distribution):
        plots += [figures.rating_means(analysis.rating_summary),
                  figures.rating_distributions(analysis.rating_distribution)]
    rendered = [fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(plots)]
    options = analysis.options
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Exclusions</h2>",
        f"<pre>{html.escape(json.dumps(analysis.exclusions, indent=2))}</pre>",
        "".join(f'<p class="note">{html.escape(n)}</p>' for n in analysis.notes),
        "<h2>Preferences</h2>", rendered[0],
        "<p>Wilson 95% CI and exact two-sided binomial test against 0.5; the cluster bootstrap "
        "accounts for repeated listeners and excerpts (two-way, Cameron-Gelbach-Miller).</p>",
        _table(analysis.pairs),
        "<h3>Cluster bootstrap</h3>", _table(analysis.cluster),
        f"<h3>Non-inferiority against {html.escape(options.reference)} (margin {options.margin})</h3>",
        _table(analysis.non_inferiority),
        "<h3>Mixed-effects logistic model</h3>",
        f"<p>{html.escape(METHOD)}: rate for a typical listener and excerpt at balanced sides.</p>"
        if len(analysis.mixed) else "",
        _table(mixed_table_for_display(analysis.mixed)),
        "<h3>Left/right bias</h3>", _table(analysis.side_bias),
        "<h2>Bradley-Terry scores</h2>", rendered[1], _table(analysis.bradley_terry),
        "<h2>Sample size and power</h2>", rendered[2],
        f"<p>Target: detect a preference of {options.target_rate:.0%} against 50% with power "
        f"{options.power} at alpha {options.alpha}, inflated by each pair's design effect.</p>",
        _table(analysis.power, ["system", "opponent", "n", "design_effect", "power", "n_required",
                                "n_required_clustered", "judgments_needed"]),
        "<h2>Ratings</h2>", *rendered[4:],
        "<h3>Friedman test and Kendall's W</h3>", _table(analysis.friedman),
        "<h3>Pairwise Wilcoxon signed-rank, Holm-corrected</h3>", _table(analysis.wilcoxon),
        "<h3>Rater agreement (Krippendorff's alpha)</h3>", _table(analysis.agreement),
        "<h3>Summary</h3>", _table(analysis.rating_summary),
        metric_agreement_section(analysis),
        "<h2>Quality control</h2>", "<h3>Catch trials</h3>", _table(analysis.catch),
        "<h3>Listeners</h3>", rendered[3], _table(analysis.listeners.head(50)),
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
