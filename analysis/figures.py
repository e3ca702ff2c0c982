"""Plotly figures of the analysis tables, shared by the offline report and the dashboards.

Each function takes a tidy table from `analysis.stats` and returns a `plotly.graph_objects.
Figure`; nothing here imports Django.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from hafm_core.constants import PAPER_PREFERENCE_VS_GROUND_TRUTH

_LAYOUT = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 50, "b": 50}, "height": 360}


def preference_bars(pairs: pd.DataFrame) -> go.Figure:
    """Rate of each pair with its two-way clustered CI (the headline), the 0.5 chance line and
    the paper's 51.5% against ground truth."""
    labels = [f"{s} vs {o}" for s, o in zip(pairs["system"], pairs["opponent"])]
    fig = go.Figure()
    fig.add_trace(go.Bar(
        x=pairs["rate"], y=labels, orientation="h", name="rate (95% CI, two-way clustered)",
        error_x={"type": "data", "symmetric": False, "array": pairs["ci_high"] - pairs["rate"],
                 "arrayminus": pairs["rate"] - pairs["ci_low"]},
        customdata=pairs[["n", "p_value"]], hovertemplate="%{y}: %{x:.3f}, n=%{customdata[0]}, "
        "p=%{customdata[1]:.3g}<extra></extra>",
    ))
    fig.add_vline(x=0.5, line_dash="dash", annotation_text="chance")
    fig.add_vline(x=PAPER_PREFERENCE_VS_GROUND_TRUTH, line_dash="dot", line_color="gray",
                  annotation_text="paper 51.5%", annotation_position="bottom right")
    fig.update_layout(title="Preference rate of the first system", xaxis={"range": [0, 1]}, **_LAYOUT)
    return fig


def bradley_terry_scores(scores: pd.DataFrame) -> go.Figure:
    """Bradley-Terry log-strengths with bootstrap percentile CIs."""
    fig = go.Figure(go.Scatter(
        x=scores["score"], y=scores["system"], mode="markers", marker={"size": 10},
        error_x={"type": "data", "symmetric": False, "array": scores["ci_high"] - scores["score"],
                 "arrayminus": scores["score"] - scores["ci_low"]},
    ))
    fig.update_layout(title="Bradley-Terry score (log-odds against the reference)", **_LAYOUT)
    fig.update_yaxes(autorange="reversed")
    return fig


def rating_distributions(distribution: pd.DataFrame) -> go.Figure:
    """Stacked share of each score per system, one group of bars per attribute."""
    table = distribution.copy()
    table["share"] = table["count"] / table.groupby(["attribute", "system"])["count"].transform("sum")
    fig = go.Figure()
    for score, part in table.groupby("score"):
        fig.add_trace(go.Bar(
            x=[part["attribute"], part["system"]], y=part["share"], name=f"score {score}",
        ))
    fig.update_layout(title="Rating distribution per attribute and system", barmode="stack",
                      yaxis={"tickformat": ".0%"}, **{**_LAYOUT, "height": 420})
    return fig


def rating_means(summary: pd.DataFrame) -> go.Figure:
    """Mean score per attribute and system with its two-way clustered CI (`ci_low`, `ci_high`)."""
    fig = go.Figure()
    for system, part in summary.groupby("system", sort=False):
        fig.add_trace(go.Bar(x=part["attribute"], y=part["mean"], name=str(system),
                             error_y={"type": "data", "symmetric": False, "array": part["ci_high"] - part["mean"],
                                      "arrayminus": part["mean"] - part["ci_low"]}))
    fig.update_layout(title="Mean rating (95% CI, two-way clustered: listener and excerpt)", barmode="group", yaxis={"range": [1, 5]}, **_LAYOUT)
    return fig


def listener_quality(listeners: pd.DataFrame) -> go.Figure:
    """Each listener: share of left choices against agreement with the majority."""
    fig = go.Figure(go.Scatter(
        x=listeners["rate_left"], y=listeners["majority_agreement"], mode="markers",
        text=listeners["participant"], marker={"size": 6 + 10 * listeners["n"] / max(listeners["n"].max(), 1)},
        hovertemplate="%{text}: left %{x:.2f}, agrees %{y:.2f}<extra></extra>",
    ))
    fig.update_layout(title="Listener quality", xaxis_title="share of left choices",
                      yaxis_title="agreement with the majority", **_LAYOUT)
    return fig


def study_progress(power: pd.DataFrame) -> go.Figure:
    """Judgments per pair against the number needed for the target power."""
    labels = [f"{s} vs {o}" for s, o in zip(power["system"], power["opponent"])]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=labels, y=power["n"], name="judgments"))
    fig.add_trace(go.Scatter(x=labels, y=power["n_required_clustered"], mode="markers",
                             marker={"symbol": "line-ew-open", "size": 40, "line": {"width": 3}},
                             name="needed for the target power"))
    fig.update_layout(title="Judgments per pair", **_LAYOUT)
    return fig
