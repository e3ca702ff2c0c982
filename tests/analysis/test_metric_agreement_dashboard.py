"""The staff dashboard of a study made from a benchmark run shows how the run's fit metrics
agree with the listeners' ratings."""

import numpy as np
import pytest
import soundfile as sf
from django.urls import reverse
from scipy import stats

from analysis.selectors import benchmark_run_id, study_fit_metrics
from analysis.synthetic import SyntheticStudyConfig, synthetic_study
from analysis.synthetic_db import populate_study
from hafm_core.fit import METRIC_NAMES

pytestmark = pytest.mark.django_db
SYSTEMS = ("three-stage", "two-stage", "random", "ground-truth")
PAIRS = {"fit_score": "overall coherence", "rhythm_score": "rhythmic alignment",
         "harmony_score": "harmonic compatibility"}


def make_run(tag: str, systems=SYSTEMS):
    from evalsite.models import BenchmarkRun, Checkpoint, Dataset

    dataset = Dataset.objects.create(kind="synthetic", source=f"synthetic:{tag}", manifest_path="m.json",
                                     manifest_hash=f"h-{tag}")
    checkpoint = Checkpoint.objects.create(name=f"ckpt-{tag}", path="/c", content_hash=f"c-{tag}")
    return BenchmarkRun.objects.create(checkpoint=checkpoint, dataset=dataset, systems=list(systems), n_excerpts=6,
                                       seed=0, embedder="vggish", parameters_hash=f"p-{tag}", code_version="test",
                                       status="done")


def add_clip(run, key, system, fit, accompaniment_path="a.wav", vocal_path="v.wav"):
    from evalsite.models import Excerpt, GeneratedClip

    excerpt, _ = Excerpt.objects.get_or_create(
        dataset=run.dataset, key=key,
        defaults={"track": key, "split": "test", "start_s": 0.0, "duration_s": 2.0, "vocal_path": vocal_path,
                  "accompaniment_path": "a.wav", "content_hash": "0" * 64})
    return GeneratedClip.objects.create(run=run, excerpt=excerpt, system=system, seed=0, status="done",
                                        accompaniment_path=accompaniment_path, fit=fit)


def ok_fit(name, rng, mean_ratings):
    """A FitResult dict whose scores follow the item's mean ratings, with noise."""
    fit = {"name": name, "status": "ok", "detail": "all metrics computed"}
    fit.update({metric: float(rng.uniform()) for metric in METRIC_NAMES})
    for metric, attribute in PAIRS.items():
        fit[metric] = float(mean_ratings.get(attribute, 3.0) / 5 + rng.normal(0, 0.1))
    return fit


@pytest.fixture
def benchmark_study():
    """A study with synthetic answers whose source is a benchmark run; the run's clips carry
    fit metrics, except one not measured and one with a failed status; a second run with the
    same excerpt keys must not be read."""
    from listening.selectors import ratings_frame

    synthetic = synthetic_study(SyntheticStudyConfig(n_judgments=300, n_participants=15, n_excerpts=6,
                                                     n_rating_blocks=40, seed=4))
    study = populate_study("study of a run", synthetic, seed=2)
    run, other_run = make_run("one"), make_run("two")
    study.source = f"benchmark run {run.id}"
    study.save(update_fields=["source"])
    exported = ratings_frame(study)  # the listening export: an independent read of the ratings
    means = exported.groupby(["excerpt", "system", "attribute"])["score"].mean()
    rng = np.random.default_rng(0)
    for key in sorted(exported.excerpt.unique()):
        for system in SYSTEMS:
            item_means = {a: means[key, system, a] for a in PAIRS.values() if (key, system, a) in means.index}
            fit = ok_fit(key, rng, item_means)
            if (key, system) == ("X0", "random"):
                fit = {"name": key, "status": "unvoiced_vocal", "detail": "", **dict.fromkeys(METRIC_NAMES)}
            if (key, system) == ("X1", "two-stage"):
                fit = {}
            add_clip(run, key, system, fit)
            add_clip(other_run, key, system, ok_fit(key, rng, {}))
    add_clip(run, "not-in-study", "three-stage", ok_fit("not-in-study", rng, {}))
    return study, run, exported


def expected_rows(study, run, exported):
    """Spearman per metric from the clips' JSON and the exported ratings, written directly."""
    from evalsite.models import GeneratedClip

    fits = {(c.excerpt.key, c.system): c.fit for c in GeneratedClip.objects.filter(run=run).select_related("excerpt")}
    out = {}
    for metric, attribute in PAIRS.items():
        means = exported[exported.attribute == attribute].groupby(["excerpt", "system"])["score"].mean()
        keys = [k for k in means.index if fits.get(k, {}).get("status") == "ok"]
        values = [fits[k][metric] for k in keys]
        out[metric] = (len(keys), stats.spearmanr(values, means.loc[keys].to_numpy()))
    return out


def test_dashboard_shows_metric_agreement_of_the_runs_clips(admin_client, benchmark_study):
    study, run, exported = benchmark_study
    response = admin_client.get(reverse("analysis:study", args=[study.public_id]))
    assert response.status_code == 200
    table = response.context["analysis"].metric_agreement.set_index("metric")
    expected = expected_rows(study, run, exported)
    assert set(table.index) == set(METRIC_NAMES)
    for metric, (n_items, reference) in expected.items():
        row = table.loc[metric]
        assert row.attribute == PAIRS[metric]
        assert row.n_items == n_items and n_items <= 6 * 4 - 2
        assert row.rho == pytest.approx(reference.statistic, abs=1e-12)
        assert row.p_value == pytest.approx(reference.pvalue, rel=1e-9)
        assert row.ci_low <= row.rho <= row.ci_high
    assert table.loc["fit_score", "rho"] > 0.5  # the fixture's metrics follow the ratings
    html = response.content.decode()
    assert 'id="metric-agreement"' in html and "Fit metrics against listener ratings" in html
    assert "overall coherence" in html.split('id="metric-agreement"')[1]
    report = admin_client.get(reverse("analysis:study-report", args=[study.public_id]))
    assert "Objective fit metrics against listener ratings" in report.content.decode()


def test_selector_reads_the_runs_measured_clips_in_one_query(benchmark_study, django_assert_num_queries):
    study, run, _ = benchmark_study
    assert benchmark_run_id(study) == run.id
    with django_assert_num_queries(1):
        metrics = study_fit_metrics(study)
    items = set(zip(metrics.excerpt, metrics.system))
    assert ("X0", "random") not in items and ("X1", "two-stage") not in items  # failed, not measured
    assert "not-in-study" not in set(metrics.excerpt)
    assert len(items) == 6 * 4 - 2 and len(metrics) == len(items) * len(METRIC_NAMES)
    clip_fit = run.clips.get(excerpt__key="X2", system="ground-truth").fit
    row = metrics[(metrics.excerpt == "X2") & (metrics.system == "ground-truth") & (metrics.metric == "fit_score")]
    assert row.value.item() == clip_fit["fit_score"]  # this run's clip, not the other run's


def test_studies_without_fit_metrics_show_no_section(admin_client, benchmark_study):
    study, _, _ = benchmark_study
    study.source = "uploaded clips"  # the same answers, no benchmark run behind them
    study.save(update_fields=["source"])
    response = admin_client.get(reverse("analysis:study", args=[study.public_id]))
    assert response.status_code == 200 and response.context["analysis"].metric_agreement.empty
    assert not response.context["analysis"].friedman.empty
    assert "metric-agreement" not in response.content.decode()
    assert study_fit_metrics(study).empty and benchmark_run_id(study) is None


def test_a_study_created_from_a_run_is_linked_to_its_clips(tmp_path, settings):
    """create_study_from_run labels excerpts and systems as the selector expects."""
    from evalsite.services.benchmark_studies import create_study_from_run

    settings.MEDIA_ROOT = tmp_path / "media"
    run = make_run("real", systems=("three-stage", "two-stage"))
    rng = np.random.default_rng(1)
    for key in ("e1", "e2"):
        vocal = tmp_path / f"{key}-vocal.wav"
        sf.write(vocal, 0.1 * rng.standard_normal(16_000 * 2).astype(np.float32), 16_000)
        for system in run.systems:
            path = tmp_path / f"{key}-{system}.wav"
            sf.write(path, 0.1 * rng.standard_normal(16_000 * 2).astype(np.float32), 16_000)
            add_clip(run, key, system, ok_fit(key, rng, {}), accompaniment_path=str(path), vocal_path=str(vocal))
    study = create_study_from_run(run, name="from the run", quota_per_pair=1)
    assert benchmark_run_id(study) == run.id
    metrics = study_fit_metrics(study)
    assert set(zip(metrics.excerpt, metrics.system)) == {(s.excerpt, s.system) for s in study.stimuli.filter(variant="")}


def test_listening_staff_pages_link_to_the_dashboards(admin_client, benchmark_study):
    study, _, _ = benchmark_study
    listing = admin_client.get(reverse("listening:staff-list")).content.decode()
    assert f'href="{reverse("analysis:index")}"' in listing
    detail = admin_client.get(reverse("listening:staff-detail", args=[study.public_id])).content.decode()
    assert f'href="{reverse("analysis:study", args=[study.public_id])}"' in detail
