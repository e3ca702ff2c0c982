"""Staff dashboards over a live study in the listening tables, as staff and others see them."""

import numpy as np
import pandas as pd
import pytest
from django.urls import reverse
from django.utils import timezone
from scipy.stats import binomtest

from analysis.synthetic import SyntheticStudyConfig, synthetic_study
from analysis.synthetic_db import populate_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def study():
    synthetic = synthetic_study(SyntheticStudyConfig(n_judgments=400, n_participants=20, n_excerpts=8,
                                                     n_rating_blocks=30, inattentive_share=0.3, seed=2))
    return populate_study("dashboard study", synthetic, catch_share=0.2, seed=1), synthetic


def expected_pairs(prefs):
    chosen = np.where(prefs.chosen == "left", prefs.system_left, prefs.system_right)
    out = {}
    for opponent in ("ground-truth", "two-stage", "random"):
        rows = (prefs.system_left == opponent) | (prefs.system_right == opponent)
        out[opponent] = (int(rows.sum()), int((chosen[rows] == "three-stage").sum()))
    return out


def test_dashboard_shows_the_live_study_to_staff(admin_client, study):
    study, synthetic = study
    response = admin_client.get(reverse("analysis:study", args=[study.public_id]))
    assert response.status_code == 200
    analysis = response.context["analysis"]
    pairs = analysis.pairs.set_index("opponent")
    for opponent, (n, wins) in expected_pairs(synthetic.preferences).items():
        assert (pairs.loc[opponent, "n"], pairs.loc[opponent, "wins"]) == (n, wins)
        # The independent-judgment p stays as a labelled secondary figure; the headline is clustered.
        assert pairs.loc[opponent, "p_value_binomial"] == pytest.approx(binomtest(wins, n).pvalue)
    assert (pairs["method"].str.contains("two-way cluster-robust")).all()
    html = response.content.decode()
    for phrase in ("two-way cluster-robust", "Holm across the 3 preference pairs", "Unit of resampling",
                   "Holm across all", "secondary"):
        assert phrase in html, phrase
    assert "Plotly.newPlot" in html and reverse("evalsite:plotly_js") in html
    assert "Krippendorff" in html and "Kendall" in html and "Catch trials" in html
    assert analysis.exclusions["catch_trials_set_aside"] > 0
    assert not analysis.friedman.empty and not analysis.catch.empty
    index = admin_client.get(reverse("analysis:index"))
    assert "dashboard study" in index.content.decode()


def test_exclusion_filter_is_applied_and_recorded(admin_client, study):
    from listening.models import Trial

    study, _ = study
    failed = set(Trial.objects.filter(participant__study=study, catch_passed=False)
                 .values_list("participant__public_id", flat=True).distinct())
    assert failed, "the fixture should have listeners failing catch trials"
    response = admin_client.get(reverse("analysis:study", args=[study.public_id]), {"catch": "1", "min_catch": "1"})
    exclusions = response.context["analysis"].exclusions
    assert set(exclusions["excluded_participants"]) == {str(p) for p in failed}
    kept = Trial.objects.filter(participant__study=study, kind="preference").exclude(
        participant__public_id__in=failed).count()
    assert exclusions["after"]["judgments"] == kept
    assert "listeners excluded" in response.content.decode()
    flagged = admin_client.get(reverse("analysis:study", args=[study.public_id]), {"flagged": "1"})
    applied = flagged.context["analysis"].exclusions["applied"]
    assert applied[0]["rule"].startswith("flagged") and applied[0]["participants"] == 0  # no flag raised here
    bad = admin_client.get(reverse("analysis:study", args=[study.public_id]), {"catch": "1", "min_catch": "lots"})
    assert bad.status_code == 400 and "min_catch" in bad.content.decode()


def test_new_answers_show_up_and_report_downloads(admin_client, study):
    from listening.models import Participant, Trial

    study, _ = study
    url = reverse("analysis:study", args=[study.public_id])
    before = admin_client.get(url).context["analysis"].exclusions["after"]["judgments"]
    template = Trial.objects.filter(participant__study=study, kind="preference").first()
    Trial.objects.create(participant=template.participant, study=study, position=10_000, kind="preference", item=template.item,
                         stimulus_left=template.stimulus_left, stimulus_right=template.stimulus_right,
                         status="answered", answer_key="k" * 43, lease_expires_at=timezone.now(),
                         answered_at=timezone.now(), chosen="left")
    # As listening.services.submit_answer does in the answer's transaction.
    Participant.objects.filter(pk=template.participant_id).update(last_seen_at=timezone.now())
    assert admin_client.get(url).context["analysis"].exclusions["after"]["judgments"] == before + 1
    report = admin_client.get(reverse("analysis:study-report", args=[study.public_id]))
    assert report.status_code == 200 and "attachment" in report["Content-Disposition"]
    assert "Plotly.newPlot" in report.content.decode() and "<script src=" not in report.content.decode()


def test_pages_are_for_staff_only(client, django_user_model, study):
    study, _ = study
    django_user_model.objects.create_user("listener", password="pw")
    client.login(username="listener", password="pw")
    for name, args in (("analysis:index", []), ("analysis:study", [study.public_id]),
                       ("analysis:study-report", [study.public_id]), ("analysis:fad", [])):
        response = client.get(reverse(name, args=args))
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_fad_history_page(admin_client):
    from evalsite.models import BenchmarkRun, Checkpoint, Dataset, SystemResult

    dataset = Dataset.objects.create(kind="synthetic", source="synthetic:2", manifest_path="m.json", manifest_hash="h")
    for index, fads in enumerate(((2.0, 2.4), (1.8, 2.3))):
        checkpoint = Checkpoint.objects.create(name=f"ckpt-{index}", path="/c", content_hash=f"c{index}")
        run = BenchmarkRun.objects.create(checkpoint=checkpoint, dataset=dataset, systems=["three-stage", "two-stage"],
                                          n_excerpts=2, seed=0, embedder="vggish", parameters_hash=f"p{index}",
                                          code_version="test")
        for system, fad in zip(("three-stage", "two-stage"), fads):
            SystemResult.objects.create(run=run, system=system, fad=fad, fad_low=fad - 0.1, fad_high=fad + 0.1,
                                        embedder="vggish")
    response = admin_client.get(reverse("analysis:fad"))
    html = response.content.decode()
    assert response.status_code == 200 and "Plotly.newPlot" in html
    assert "ckpt-1" in html and "1.800" in html and "[1.700, 1.900]" in html
    empty = admin_client.get(reverse("analysis:study", args=["00000000-0000-0000-0000-000000000000"]))
    assert empty.status_code == 404


def test_listening_csv_exports_feed_hafm_analyze_and_agree_with_the_dashboard(admin_client, study, tmp_path, capsys):
    import json

    from hafm_core.cli import main
    from listening.exports import write_exports

    study, _ = study
    write_exports(study, tmp_path)
    argv = ["analyze", str(tmp_path / "preferences.csv"), "--ratings", str(tmp_path / "ratings.csv"),
            "--participants", str(tmp_path / "participants.csv"), "--exclude-failed-catch", "--json", "--n-boot", "100"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    page = admin_client.get(reverse("analysis:study", args=[study.public_id]), {"catch": "1", "min_catch": "1"})
    dashboard = page.context["analysis"]
    assert out["exclusions"]["excluded_participants"] == dashboard.exclusions["excluded_participants"]
    assert out["exclusions"]["catch_trials_set_aside"] == dashboard.exclusions["catch_trials_set_aside"]
    ours = {(p["system"], p["opponent"]): (p["n"], p["wins"]) for p in out["pairs"]}
    theirs = {(r.system, r.opponent): (r.n, r.wins) for r in dashboard.pairs.itertuples()}
    assert ours == theirs
    assert len(out["friedman"]) == len(dashboard.friedman) == 3


def test_dashboard_statistics_equal_the_analysis_of_the_exports(admin_client, study):
    """The dashboard's fast read (the study's trial index, raw columns, categoricals) feeds the
    analysis exactly what the export's per-trial read does: every table of the page equals
    `analyze_study` run on `listening.selectors.study_frames` with the dashboard's options."""
    from analysis.dashboards import DASHBOARD_OPTIONS
    from analysis.stats.exclusions import ExclusionRules
    from analysis.stats.study import analyze_study
    from listening.selectors import study_frames

    study, _ = study
    page = admin_client.get(reverse("analysis:study", args=[study.public_id]), {"catch": "1", "min_catch": "0.5"})
    shown = page.context["analysis"]
    frames = study_frames(study)
    expected = analyze_study(frames["preferences"], frames["ratings"], frames["participants"],
                             ExclusionRules(min_catch_accuracy=0.5), DASHBOARD_OPTIONS)
    assert shown.exclusions == expected.exclusions and shown.notes == expected.notes
    for name in ("pairs", "non_inferiority", "side_bias", "bradley_terry", "mixed", "power", "catch",
                 "rating_comparisons", "friedman", "wilcoxon", "agreement", "rating_summary", "rating_distribution"):
        pd.testing.assert_frame_equal(getattr(shown, name), getattr(expected, name), check_dtype=False,
                                      check_categorical=False, obj=name)
    # The page leaves out the export's extra columns (the browser-reported response times).
    pd.testing.assert_frame_equal(shown.listeners, expected.listeners[shown.listeners.columns], check_dtype=False)
    assert not shown.bradley_terry.empty and shown.bradley_terry["ci_low"].notna().any()
