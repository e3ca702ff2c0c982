"""Reads of the analysis app beyond the listening tables: the fit metrics of a study's clips.

A study made from a benchmark run (`evalsite.services.benchmark_studies.create_study_from_run`)
records `source = "benchmark run <run id>"`, names each excerpt by the run's `Excerpt.key`
and each system by `GeneratedClip.system`; so the clip behind a rated stimulus is the run's
clip with the same (excerpt key, system), and its `fit` JSON is a `hafm_core.fit.FitResult`.
"""

from __future__ import annotations

import re
import uuid

import pandas as pd

from analysis.stats.metric_agreement import METRIC_COLUMNS
from evalsite.models import GeneratedClip
from hafm_core.fit import METRIC_NAMES
from listening.models import Stimulus, Study

_RUN_SOURCE = re.compile(r"^benchmark run ([0-9a-fA-F-]{36})$")


def benchmark_run_id(study: Study) -> uuid.UUID | None:
    """The id of the benchmark run the study was made from, or None (uploaded clips)."""
    match = _RUN_SOURCE.match(study.source or "")
    return uuid.UUID(match.group(1)) if match else None


def study_fit_metrics(study: Study) -> pd.DataFrame:
    """Fit metrics of the study's clips, long format `excerpt, system, metric, value`.

    One SQL statement: the run's done clips whose excerpt key is one of the study's excerpts
    (a subquery on its stimuli) and whose `fit` is filled. Clips whose fit status is not ok
    carry no metrics and give no rows. Empty when the study was not made from a run or its
    clips have not been measured.
    """
    run_id = benchmark_run_id(study)
    if run_id is None:
        return pd.DataFrame(columns=list(METRIC_COLUMNS))
    excerpts = Stimulus.objects.filter(study=study, variant="").values("excerpt")
    clips = (GeneratedClip.objects.filter(run_id=run_id, status=GeneratedClip.Status.DONE, excerpt__key__in=excerpts)
             .exclude(fit={}).values_list("excerpt__key", "system", "fit"))
    rows = [(key, system, metric, float(fit[metric]))
            for key, system, fit in clips if fit.get("status") == "ok"
            for metric in METRIC_NAMES if fit.get(metric) is not None]
    return pd.DataFrame(rows, columns=list(METRIC_COLUMNS))
