"""Staff dashboards: read a live study straight from the listening tables, analyse, chart.

The reads use `values_list` (no model instances) through the trials' (study, status, kind)
index (`Trial.study`; through each participant's trials they cost a random row lookup per
trial): a study of 100 000 judgments loads in a fraction of a second, where building a model
object per trial would take seconds. The
statistics are `analysis.stats.study.analyze_study`, the same code as `hafm analyze`; the
result is cached under a key made of the study, its answered-trial count and latest answer
time, the exclusion rules and the fit metrics of the study's clips, so a page reload between
answers costs nothing and a new answer is seen at once. A study made from a benchmark run
whose clips carry fit metrics also gets their agreement with the listeners' ratings
(`analysis.selectors.study_fit_metrics`, `analysis.stats.metric_agreement`).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict

import numpy as np
import pandas as pd
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Max, Q, Sum

from analysis import figures
from analysis.report import analysis_tables_html
from analysis.selectors import study_fit_metrics
from analysis.stats.encoding import system_order
from analysis.stats.exclusions import ExclusionRules
from analysis.stats.study import AnalysisOptions, StudyAnalysis, analyze_study
from analysis.stats.validation import AnalysisInputError
from evalsite.models import SystemResult
from listening.models import Item, Participant, Rating, Stimulus, Study, Trial

# Dashboards favour speed: fewer bootstrap replicates than the report (CIs move in the 3rd
# decimal), and the mixed model only where it is cheap.
DASHBOARD_OPTIONS = AnalysisOptions(n_boot=400, mixed_model_max_levels=400)
CACHE_SECONDS = 3600
LISTENER_ROWS = 30
PAIR_KINDS = (Trial.Kind.PREFERENCE, Trial.Kind.CATCH_MANIPULATED, Trial.Kind.CATCH_REPEAT)


def _fetch(queryset, *fields) -> pd.DataFrame:
    """Rows of `queryset.values_list(*fields)` straight from the database cursor into a
    DataFrame: one SQL statement, no per-row Python objects from the ORM. Only for fields
    whose raw database values are what we want (ids, text, numbers, booleans)."""
    sql, params = queryset.order_by().values_list(*fields).query.sql_with_params()  # no sort
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return pd.DataFrame.from_records(cursor.fetchall(), columns=list(fields))


def _stimulus_labels(study: Study) -> pd.DataFrame:
    """Per stimulus id: excerpt and export label (`system`, or `system~variant` for catch clips)."""
    table = _fetch(Stimulus.objects.filter(study=study), "id", "excerpt", "system", "variant")
    variant = table["variant"].fillna("")
    table["label"] = table["system"].where(variant == "", table["system"] + "~" + variant)
    return table.set_index("id")


def _participant_labels(study: Study) -> pd.Series:
    table = _fetch(Participant.objects.filter(study=study), "id", "public_id")
    return pd.Series([str(uuid.UUID(str(v))) for v in table["public_id"]], index=table["id"])


def _categorical(ids: pd.Series, labels: pd.Series) -> pd.Categorical:
    """`labels[ids]` as a categorical built from integer positions (no string per row)."""
    categories, codes_of_label = np.unique(labels.to_numpy(dtype=str), return_inverse=True)
    position = labels.index.get_indexer(ids.to_numpy())
    return pd.Categorical.from_codes(codes_of_label.ravel()[position], categories=categories)


def _as_bool(values: pd.Series) -> pd.Series:
    """Database booleans (SQLite gives 0/1) as a nullable boolean column."""
    return values.map({1: True, 0: False}).astype("boolean")  # True == 1, False == 0


def preferences_table(study: Study) -> pd.DataFrame:
    """Answered 2AFC trials in the export format (catch trials flagged): three statements;
    label columns come back as categoricals, ready for `analysis.stats`."""
    trials = _fetch(
        Trial.objects.filter(study=study, status=Trial.Status.ANSWERED, kind__in=PAIR_KINDS),
        "participant_id", "stimulus_left_id", "stimulus_right_id", "chosen", "kind", "catch_passed",
        "response_time_ms")
    stimuli = _stimulus_labels(study)
    kind = trials["kind"].astype("category")
    return pd.DataFrame({
        "participant": _categorical(trials["participant_id"], _participant_labels(study)),
        "excerpt": _categorical(trials["stimulus_left_id"], stimuli["excerpt"]),
        "system_left": _categorical(trials["stimulus_left_id"], stimuli["label"]),
        "system_right": _categorical(trials["stimulus_right_id"], stimuli["label"]),
        "chosen": trials["chosen"].astype("category"),
        "trial_type": kind,
        "is_catch": kind.isin([Trial.Kind.CATCH_MANIPULATED, Trial.Kind.CATCH_REPEAT]).to_numpy(),
        "catch_passed": _as_bool(trials["catch_passed"]).to_numpy(),
        "response_time_ms": trials["response_time_ms"].to_numpy(),
    })


def ratings_table(study: Study) -> pd.DataFrame:
    """Answered ratings in the export format: three statements."""
    ratings = _fetch(Rating.objects.filter(trial__study=study, trial__status=Trial.Status.ANSWERED),
                     "trial__participant_id", "trial__stimulus_left_id", "attribute", "score")
    stimuli = _stimulus_labels(study)
    return pd.DataFrame({
        "participant": _categorical(ratings["trial__participant_id"], _participant_labels(study)),
        "excerpt": _categorical(ratings["trial__stimulus_left_id"], stimuli["excerpt"]),
        "system": _categorical(ratings["trial__stimulus_left_id"], stimuli["system"]),
        "attribute": ratings["attribute"].astype("category"),
        "score": ratings["score"].to_numpy(),
    })


def participant_flag_fields() -> list[str]:
    """The integrity flags the Participant model records (`flag_*` boolean fields; none on an
    older schema, then nobody is flagged)."""
    return sorted(f.name for f in Participant._meta.get_fields()
                  if f.name.startswith("flag_") and getattr(f, "get_internal_type", lambda: "")() == "BooleanField")


def participants_table(study: Study) -> pd.DataFrame:
    """participant, status, screening (passed / failed / pending / not required), and the
    integrity flags (`flag_*`) where the model has them."""
    columns = ["public_id", "status", "screening_passed", *participant_flag_fields()]
    rows = Participant.objects.filter(study=study).values_list(*columns)
    table = pd.DataFrame.from_records(list(rows), columns=["participant", *columns[1:]])
    table["participant"] = table["participant"].astype(str)
    screening = table["screening_passed"].map({True: "passed", False: "failed"}).fillna("pending")
    table["screening"] = screening if study.screening_enabled else "not required"
    return table


def quota_progress(study: Study) -> pd.DataFrame:
    """Judgments counted by the allocator against the quota, per compared pair (both orders)."""
    rows = (Item.objects.filter(study=study, kind=Item.Kind.PREFERENCE)
            .values("stimulus_a__system", "stimulus_b__system")
            .annotate(quota=Sum("quota"), judged=Sum("n_judged"), excerpts=Count("id")))
    table = pd.DataFrame.from_records(list(rows))
    if table.empty:
        return pd.DataFrame(columns=["pair", "quota", "judged", "excerpts"])
    table["pair"] = [" vs ".join(system_order([a, b])) for a, b in zip(table["stimulus_a__system"],
                                                                         table["stimulus_b__system"])]
    return table.groupby("pair", as_index=False)[["quota", "judged", "excerpts"]].sum()


def _fingerprint(study: Study, rules: ExclusionRules, options: AnalysisOptions, metrics: pd.DataFrame) -> str:
    """Cache key that changes with every recorded answer: `listening.services.submit_answer`
    sets the participant's `last_seen_at` in the answer's transaction, so aggregating the
    study's few participant rows sees each new answer without scanning its trials. The fit
    metrics enter by the hash of their content (a run may measure clips after the study opens)."""
    state = Participant.objects.filter(study=study).aggregate(
        n=Count("id"), seen=Max("last_seen_at"), completed=Max("completed_at"), ended=Max("ended_at"),
        n_completed=Count("id", filter=Q(status=Participant.Status.COMPLETED)),
        n_screened=Count("id", filter=Q(screening_passed__isnull=False)))
    metrics_hash = hashlib.sha256(pd.util.hash_pandas_object(metrics, index=False).to_numpy().tobytes()).hexdigest()
    payload = json.dumps([str(study.public_id), {k: str(v) for k, v in state.items()}, asdict(rules),
                          asdict(options), metrics_hash], sort_keys=True)
    return "analysis:study:" + hashlib.sha256(payload.encode()).hexdigest()


def study_analysis(study: Study, rules: ExclusionRules, options: AnalysisOptions = DASHBOARD_OPTIONS,
                   metrics: pd.DataFrame | None = None) -> StudyAnalysis | None:
    """The analysis of a live study under `rules`; None while it has no usable judgment.

    metrics: the fit metrics of its clips (long format); None reads them (`study_fit_metrics`).
    """
    preferences = preferences_table(study)
    if preferences.empty or (~preferences["is_catch"]).sum() == 0:
        return None
    ratings = ratings_table(study)
    if metrics is None:
        metrics = study_fit_metrics(study)
    return analyze_study(preferences, ratings if len(ratings) else None, participants_table(study), rules, options,
                         metrics=metrics if len(metrics) else None)


def dashboard(study: Study, rules: ExclusionRules) -> dict:
    """{'analysis', 'charts', 'tables', 'n_fit_clips'} of the study page, cached until the next
    answer or fit metric."""
    metrics = study_fit_metrics(study)
    key = _fingerprint(study, rules, DASHBOARD_OPTIONS, metrics)
    if (cached := cache.get(key)) is not None:
        return cached
    analysis = study_analysis(study, rules, metrics=metrics)
    n_fit_clips = len(metrics.drop_duplicates(["excerpt", "system"]))
    payload = {"analysis": analysis, "charts": {}, "tables": {}, "n_fit_clips": n_fit_clips}
    if analysis is not None:
        payload.update(charts=study_charts(analysis), tables=study_tables_html(analysis))
    cache.set(key, payload, CACHE_SECONDS)
    return payload


def _div(fig) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, default_height="360px")


def study_charts(analysis: StudyAnalysis) -> dict[str, str]:
    """Plot <div>s (plotly.js is loaded once by the page)."""
    charts = {
        "preferences": _div(figures.preference_bars(analysis.pairs)),
        "bradley_terry": _div(figures.bradley_terry_scores(analysis.bradley_terry)),
        "progress": _div(figures.study_progress(analysis.power)),
        "listeners": _div(figures.listener_quality(analysis.listeners)),
    }
    if len(analysis.rating_distribution):
        charts["rating_means"] = _div(figures.rating_means(analysis.rating_summary))
        charts["rating_distribution"] = _div(figures.rating_distributions(analysis.rating_distribution))
    return charts


def rules_from_query(query) -> ExclusionRules:
    """Exclusion filters from the dashboard's GET form (`catch`, `min_catch`, `screening`,
    `completed`, `flagged`); a malformed threshold raises AnalysisInputError naming it."""
    minimum = None
    if query.get("catch"):
        text = query.get("min_catch") or "1.0"
        try:
            minimum = float(text)
        except ValueError:
            raise AnalysisInputError(f"min_catch must be a number between 0 and 1, got {text!r}") from None
        if not 0.0 <= minimum <= 1.0:
            raise AnalysisInputError(f"min_catch must be between 0 and 1, got {minimum}")
    return ExclusionRules(min_catch_accuracy=minimum, exclude_failed_screening=bool(query.get("screening")),
                          completed_only=bool(query.get("completed")), exclude_flagged=bool(query.get("flagged")))


def fad_history() -> pd.DataFrame:
    """FAD per system and checkpoint over time, from the benchmark runs' system results."""
    rows = (SystemResult.objects.filter(fad__isnull=False)
            .values_list("system", "fad", "fad_low", "fad_high", "embedder", "run__checkpoint__name",
                         "run__checkpoint__content_hash", "run__created", "run_id")
            .order_by("run__created"))
    columns = ["system", "fad", "fad_low", "fad_high", "embedder", "checkpoint", "checkpoint_hash", "created", "run"]
    return pd.DataFrame.from_records(list(rows), columns=columns)


def fad_chart(history: pd.DataFrame) -> str:
    """FAD against run time, one line per (system, embedder), error bars from the CIs."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for (system, embedder), part in history.groupby(["system", "embedder"]):
        low = (part["fad"] - part["fad_low"]).to_numpy(np.float64)
        high = (part["fad_high"] - part["fad"]).to_numpy(np.float64)
        fig.add_trace(go.Scatter(
            x=part["created"], y=part["fad"], mode="lines+markers", name=f"{system} ({embedder})",
            text=part["checkpoint"], hovertemplate="%{text}: FAD %{y:.3f}<extra></extra>",
            error_y={"type": "data", "symmetric": False, "array": np.nan_to_num(high),
                     "arrayminus": np.nan_to_num(low)},
        ))
    fig.update_layout(title="FAD per system over benchmark runs (lower is better)", template="plotly_white",
                      yaxis_title="FAD", height=400)
    return _div(fig)


def study_tables_html(analysis: StudyAnalysis) -> dict[str, str]:
    """HTML tables of the dashboard, captioned with their methods (the report's text; pandas
    escapes every cell)."""
    return analysis_tables_html(analysis, listener_rows=LISTENER_ROWS, css_class="stats", empty="")
