"""The whole analysis of a listening study in one call, as the CLI, report and dashboards use it.

`analyze_study` validates the exports, sets catch trials aside, applies the exclusion rules,
and runs every statistic of `analysis.stats` with one set of options. The result is a frozen
bundle of tidy DataFrames plus `to_dict()`, the JSON of `hafm analyze --json`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from analysis.stats.agreement import krippendorff_alpha
from analysis.stats.bradley_terry import METHOD as BT_METHOD
from analysis.stats.bradley_terry import bradley_terry
from analysis.stats.clustered import (
    RATE_METHOD,
    UNIT,
    clustered_rates,
    one_sided_lower,
    rating_comparisons,
)
from analysis.stats.encoding import as_categories
from analysis.stats.exclusions import ExclusionRules, apply_exclusions, flag_column
from analysis.stats.metric_agreement import check_metrics, metric_agreement
from analysis.stats.mixed import mixed_logistic
from analysis.stats.power import power_analysis
from analysis.stats.preference import non_inferiority, side_bias
from analysis.stats.quality import catch_summary, listener_quality
from analysis.stats.ratings import friedman, rating_distribution, rating_summary, wilcoxon_pairs
from analysis.stats.validation import (
    PREFERENCE_COLUMNS,
    AnalysisInputError,
    check_preferences,
    check_rating_scale,
    check_ratings,
)
from hafm_core.constants import (
    PAPER_FAD_THREE_STAGE,
    PAPER_FAD_TWO_STAGE,
    PAPER_PREFERENCE_VS_GROUND_TRUTH,
    PAPER_RELATIVE_IMPROVEMENT,
)

PAIR_KEYS = ("system", "opponent", "n", "wins", "rate", "ci_low", "ci_high", "p_value", "p_holm", "method",
             "unit", "ci_low_wilson", "ci_high_wilson", "p_value_binomial", "se_cluster", "df", "g_listeners",
             "g_excerpts", "design_effect", "note")


@dataclass(frozen=True)
class AnalysisOptions:
    """Every choice that changes a number in the report; recorded in its output."""

    confidence: float = 0.95
    reference: str = "ground-truth"  # non-inferiority and Bradley-Terry anchor
    margin: float = 0.05  # non-inferiority margin, stated before the study
    target_rate: float = 0.55  # the preference rate the study should be able to detect
    alpha: float = 0.05
    power: float = 0.8
    n_boot: int = 1000
    seed: int = 0
    mixed_model: bool = True
    # The dense Laplace GLMM costs ~(listeners + excerpts)^3 per step: skipped above this.
    mixed_model_max_levels: int = 1500
    # Fit metric -> rated attribute for the metric agreement; None: DEFAULT_METRIC_ATTRIBUTES.
    metric_attributes: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True)
class StudyAnalysis:
    """Tidy tables of one analysis; empty DataFrames where an input was not given."""

    options: AnalysisOptions
    exclusions: dict
    pairs: pd.DataFrame
    non_inferiority: pd.DataFrame
    side_bias: pd.DataFrame
    bradley_terry: pd.DataFrame
    mixed: pd.DataFrame
    power: pd.DataFrame
    catch: pd.DataFrame
    listeners: pd.DataFrame
    rating_comparisons: pd.DataFrame = field(default_factory=pd.DataFrame)
    friedman: pd.DataFrame = field(default_factory=pd.DataFrame)
    wilcoxon: pd.DataFrame = field(default_factory=pd.DataFrame)
    agreement: pd.DataFrame = field(default_factory=pd.DataFrame)
    rating_summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    rating_distribution: pd.DataFrame = field(default_factory=pd.DataFrame)
    metric_agreement: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: tuple[str, ...] = ()
    fad: dict | None = None  # normalised by `fad_comparison`, for the paper comparison

    def to_dict(self) -> dict:
        """JSON-ready dict: NaN and infinities become null, numpy scalars plain numbers."""
        tables = {
            "non_inferiority": self.non_inferiority,
            "side_bias": self.side_bias, "bradley_terry": self.bradley_terry,
            "mixed_model": self.mixed, "power": self.power, "catch_trials": self.catch,
            "listeners": self.listeners, "rating_comparisons": self.rating_comparisons,
            "friedman": self.friedman, "wilcoxon": self.wilcoxon,
            "agreement": self.agreement, "rating_summary": self.rating_summary,
            "metric_agreement": self.metric_agreement,
        }
        out = {
            "pairs": records(self.pairs[list(PAIR_KEYS)]),
            **{name: records(table) for name, table in tables.items()},
            "paper_comparison": paper_comparison(self),
            "exclusions": self.exclusions,
            "options": asdict(self.options),
            "notes": list(self.notes),
            "methods": {
                "pairs": f"{RATE_METHOD}; p_holm: Holm across the preference pairs; *_wilson and "
                         "p_value_binomial: independent judgments (secondary)",
                "unit": UNIT,
                "non_inferiority": f"one-sided {RATE_METHOD}",
                "bradley_terry": BT_METHOD,
                "rating_comparisons": f"{RATE_METHOD}; Holm across all rating comparisons",
                "mixed_model": "secondary: Laplace GLMM, Wald test, Holm across its pairs",
                "friedman": "secondary: (listener, excerpt) blocks treated as independent",
                "wilcoxon": "secondary: (listener, excerpt) blocks treated as independent; Holm per attribute",
                "p_values": "floored at 1e-16 (double precision); printed as '< 1e-6' below 1e-6",
            },
        }
        return out


def _plain(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def records(table: pd.DataFrame) -> list[dict]:
    """Rows of `table` as JSON-safe dicts."""
    return [{k: _plain(v) for k, v in row.items()} for row in table.to_dict(orient="records")]


def paper_comparison(analysis: StudyAnalysis) -> dict:
    """Our figures beside the paper's: preference vs ground truth (51.5%), vs random, and
    when FAD results are given, three-stage and two-stage FAD (1.71, 2.10) and the relative
    improvement (18.6%)."""
    pairs = analysis.pairs.set_index(["system", "opponent"])
    out = {"paper": {
        "fad_three_stage": PAPER_FAD_THREE_STAGE, "fad_two_stage": PAPER_FAD_TWO_STAGE,
        "relative_improvement": PAPER_RELATIVE_IMPROVEMENT,
        "preference_vs_ground_truth": PAPER_PREFERENCE_VS_GROUND_TRUTH,
    }}
    for key, opponent in (("preference_vs_ground_truth", "ground-truth"), ("preference_vs_random", "random")):
        if ("three-stage", opponent) in pairs.index:
            row = pairs.loc[("three-stage", opponent)]
            out[key] = {k: _plain(row[k]) for k in ("n", "rate", "ci_low", "ci_high", "p_value", "method", "unit",
                                                     "ci_low_wilson", "ci_high_wilson", "note")}
            if opponent == "ground-truth":
                # The verdict uses the clustered interval; None when it is not estimable.
                estimable = math.isfinite(row.ci_low) and math.isfinite(row.ci_high)
                out[key]["paper_inside_ci"] = (bool(row.ci_low <= PAPER_PREFERENCE_VS_GROUND_TRUTH <= row.ci_high)
                                               if estimable else None)
    if analysis.fad:
        out["fad"] = analysis.fad
    return out


SECONDARY_RATINGS = ("secondary: treats each complete (listener, excerpt) block as independent, "
                     "so it over-rejects when systems interact with listeners or excerpts")


def _ratings_tables(ratings: pd.DataFrame, options: AnalysisOptions) -> dict:
    """Headline: two-way clustered means and pairwise differences (Holm across all rating
    comparisons); Friedman and Wilcoxon stay as labelled secondary analyses."""
    check_ratings(ratings)
    comparisons, means = rating_comparisons(ratings, options.confidence, options.alpha)
    summary = rating_summary(ratings).drop(columns="se").merge(
        means[["attribute", "system", "se_cluster", "df", "ci_low", "ci_high", "method", "unit"]],
        on=["attribute", "system"], how="left")
    friedman_table = friedman(ratings).assign(method="Friedman (1937), tie-corrected; " + SECONDARY_RATINGS,
                                              unit="(listener, excerpt) block")
    wilcoxon_table = wilcoxon_pairs(ratings, options.alpha).assign(
        method="Wilcoxon signed-rank, Holm within each attribute; " + SECONDARY_RATINGS,
        unit="(listener, excerpt) block")
    return {
        "rating_comparisons": comparisons,
        "friedman": friedman_table,
        "wilcoxon": wilcoxon_table,
        "agreement": krippendorff_alpha(ratings),
        "rating_summary": summary,
        "rating_distribution": rating_distribution(ratings),
    }


def _metric_agreement(metrics: pd.DataFrame, ratings: pd.DataFrame | None, options: AnalysisOptions,
                      notes: list[str]) -> pd.DataFrame:
    """Spearman's rho of each fit metric with its attribute's ratings (after exclusions); a
    metric that cannot be estimated keeps its row, empty, and its reason goes to the notes."""
    if ratings is None or len(ratings) == 0:
        notes.append("fit metrics given but no ratings (after exclusions): metric agreement not computed")
        return pd.DataFrame()
    mapping = dict(options.metric_attributes) if options.metric_attributes is not None else None
    table = metric_agreement(metrics, ratings, mapping, n_boot=options.n_boot, seed=options.seed,
                             confidence=options.confidence, strict=False)
    notes.extend(f"metric agreement, {row.metric} vs {row.attribute}: {row.note}"
                 for row in table.itertuples(index=False) if row.note)
    return table


def _mixed(preferences: pd.DataFrame, options: AnalysisOptions, notes: list[str]) -> pd.DataFrame:
    if not options.mixed_model:
        notes.append("mixed model not fitted (disabled)")
        return pd.DataFrame()
    levels = preferences["participant"].nunique() + preferences["excerpt"].nunique()
    if levels > options.mixed_model_max_levels:
        notes.append(f"mixed model skipped: {levels} listeners + excerpts exceed "
                     f"{options.mixed_model_max_levels}; use the cluster bootstrap")
        return pd.DataFrame()
    return mixed_logistic(preferences, options.confidence)


def _bradley_terry(preferences: pd.DataFrame, options: AnalysisOptions, notes: list[str]) -> pd.DataFrame:
    """Scores per connected part of the comparison graph; 0.5 virtual wins per pair only in a
    part whose maximum-likelihood estimate does not exist; every such choice is noted."""
    table = bradley_terry(preferences, reference=options.reference, n_boot=options.n_boot,
                          seed=options.seed, confidence=options.confidence, prior=None)
    for note in dict.fromkeys(table["note"]):
        if note:
            notes.append(f"Bradley-Terry: {note}")
    return table


def _non_inferiority(preferences: pd.DataFrame, pairs: pd.DataFrame, options: AnalysisOptions) -> pd.DataFrame:
    """Non-inferiority of every system against the reference, decided by the two-way
    clustered one-sided bound (rate - t_(1-alpha, df) * se_cluster > 0.5 - margin); the exact
    binomial test and Clopper-Pearson bound, which assume independent judgments, stay beside
    it as `*_binomial` secondary figures."""
    table = non_inferiority(preferences, options.reference, options.margin, options.alpha)
    table = table.rename(columns={"p_value": "p_value_binomial", "lower_bound": "lower_bound_binomial",
                                  "non_inferior": "non_inferior_binomial"})
    by_pair = {}
    for row in pairs.itertuples(index=False):
        by_pair[(row.system, row.opponent)] = (row.se_cluster, row.df, row.note)
        by_pair[(row.opponent, row.system)] = (row.se_cluster, row.df, row.note)
    se, df, note = (np.array(column) for column in zip(*(by_pair[(s, options.reference)] for s in table["system"])))
    se, df = se.astype(np.float64), df.astype(np.float64)
    lower, p_value = one_sided_lower(table["rate"].to_numpy(np.float64), se, df, 0.5 - options.margin, options.alpha)
    table["se_cluster"], table["df"] = se, df
    table["lower_bound"], table["p_value"] = lower, p_value
    verdict = pd.Series(p_value < options.alpha, dtype="boolean")
    table["non_inferior"] = verdict.mask(np.isnan(p_value))
    table["method"] = f"one-sided {RATE_METHOD}"
    table["unit"] = UNIT
    table["note"] = note
    columns = ["system", "reference", "n", "wins", "rate", "margin", "null_rate", "lower_bound", "p_value",
               "non_inferior", "method", "unit", "se_cluster", "df", "lower_bound_binomial", "p_value_binomial",
               "non_inferior_binomial", "note"]
    return table[columns]


def _with_flags(listeners: pd.DataFrame, participants: pd.DataFrame | None) -> pd.DataFrame:
    """The listener table with the integrity flags raised on each listener (`flags`, names
    joined by ';') when the participants table carries `flag_*` columns."""
    if participants is None or "participant" not in participants.columns:
        return listeners
    columns = sorted(c for c in participants.columns if str(c).startswith("flag_"))
    if not columns:
        return listeners
    raised = np.column_stack([flag_column(participants[c]) for c in columns])
    text = [";".join(c.removeprefix("flag_") for c, on in zip(columns, row) if on) for row in raised]
    flags = pd.Series(text, index=participants["participant"].astype(str).to_numpy())
    flags = flags[~flags.index.duplicated()]
    return listeners.assign(flags=listeners["participant"].map(flags).fillna(""))


def fad_comparison(fad: dict) -> dict:
    """Normalise FAD figures for the paper comparison.

    Accepts {"three-stage": 1.8 | {"fad": 1.8, "ci_low": .., "ci_high": ..}, "two-stage": ..,
    optional "relative_improvement": {"value": .., "ci_low": .., "ci_high": ..}} (or the same
    under a "systems" key). The relative improvement 1 - FAD_3 / FAD_2 is computed when absent
    (without a CI: a paired CI needs the per-file statistics, see `hafm fad`).
    """
    systems = fad.get("systems", fad)
    out = {}
    for name in ("three-stage", "two-stage"):
        value = systems.get(name)
        if value is None:
            continue
        entry = value if isinstance(value, dict) else {"fad": value}
        if not isinstance(entry.get("fad"), (int, float)):
            raise AnalysisInputError(f"FAD JSON: {name!r} needs a numeric 'fad', got {value!r}")
        out[name] = {k: entry.get(k) for k in ("fad", "ci_low", "ci_high") if entry.get(k) is not None}
    improvement = fad.get("relative_improvement")
    if isinstance(improvement, (int, float)):
        improvement = {"value": improvement}
    if improvement is None and {"three-stage", "two-stage"} <= out.keys():
        improvement = {"value": 1.0 - out["three-stage"]["fad"] / out["two-stage"]["fad"]}
    if improvement is not None:
        out["relative_improvement"] = improvement
    return out


def analyze_study(
    preferences: pd.DataFrame,
    ratings: pd.DataFrame | None = None,
    participants: pd.DataFrame | None = None,
    rules: ExclusionRules | None = None,
    options: AnalysisOptions | None = None,
    fad: dict | None = None,
    metrics: pd.DataFrame | None = None,
) -> StudyAnalysis:
    """Run every statistic on the exports after setting catch trials aside and applying `rules`.

    `metrics`: fit metrics of the rated clips, long format `excerpt, system, metric, value`
    (`hafm fit --csv`); with ratings they give the `metric_agreement` table.
    """
    rules = rules or ExclusionRules()
    options = options or AnalysisOptions()
    check_preferences(preferences)
    preferences = as_categories(preferences, PREFERENCE_COLUMNS)
    if ratings is not None:
        check_ratings(ratings)
        check_rating_scale(ratings)
        ratings = as_categories(ratings, ["participant", "excerpt", "system", "attribute"])
    if metrics is not None:
        metrics = check_metrics(metrics)
    filtered = apply_exclusions(preferences, ratings, participants, rules)
    prefs = filtered.preferences
    check_preferences(prefs, "preferences (after exclusions)")
    notes: list[str] = []
    pairs = clustered_rates(prefs, options.confidence)
    notes.extend(f"preferences, {row.system} vs {row.opponent}: {row.note}"
                 for row in pairs.itertuples(index=False) if row.note)
    reference_present = options.reference in set(pairs.system) | set(pairs.opponent)
    if not reference_present:
        notes.append(f"no pair involves {options.reference!r}: non-inferiority not tested")
    tables = {
        "pairs": pairs,
        "non_inferiority": (_non_inferiority(prefs, pairs, options) if reference_present else pd.DataFrame()),
        "side_bias": side_bias(prefs, confidence=options.confidence).assign(
            method="Wilson CI and exact binomial test against 0.5 (judgments treated as independent)",
            unit="judgment"),
        "bradley_terry": _bradley_terry(prefs, options, notes),
        "mixed": _mixed(prefs, options, notes),
        "power": power_analysis(pairs[["system", "opponent", "n", "design_effect"]], options.target_rate,
                                options.alpha, options.power, design_effect="design_effect").assign(
            method="normal approximation (Cohen's h), inflated by the two-way clustered design effect"),
        "catch": catch_summary(filtered.catch_trials).assign(method="Wilson CI", unit="catch trial"),
        "listeners": _with_flags(listener_quality(prefs, filtered.catch_trials), participants),
    }
    if filtered.ratings is not None and len(filtered.ratings):
        tables.update(_ratings_tables(filtered.ratings, options))
    if metrics is not None:
        tables["metric_agreement"] = _metric_agreement(metrics, filtered.ratings, options, notes)
    return StudyAnalysis(options=options, exclusions=filtered.record, notes=tuple(notes),
                         fad=fad_comparison(fad) if fad else None, **tables)
