"""Trial.study, the copy of the participant's study the analysis reads through (#14 item 9):
set wherever trials are made, required by the database, backfilled by its migration."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from listening import services
from listening.models import Trial
from tests.listening.conftest import answer, start_trials


@pytest.mark.django_db
def test_served_trials_carry_their_participants_study(make_study):
    studies = [make_study(), make_study()]
    for study in studies:
        participant = start_trials(study, f"p{study.pk}")
        answer(participant, services.next_trial(participant))
        services.next_trial(participant)
    trials = Trial.objects.values_list("study_id", "participant__study_id")
    assert len(trials) == 4 and all(study == of_participant for study, of_participant in trials)
    assert Trial.objects.filter(study=studies[0]).count() == 2


@pytest.mark.django_db
def test_a_trial_without_its_study_is_refused(make_study):
    participant = start_trials(make_study(), "x")
    trial = services.next_trial(participant)
    with pytest.raises(IntegrityError), transaction.atomic():
        Trial.objects.bulk_create([Trial(participant=participant, position=99, kind="preference",
                                         stimulus_left=trial.stimulus_left, stimulus_right=trial.stimulus_right,
                                         answer_key="k" * 43, lease_expires_at=timezone.now())])


BEFORE = [("listening", "0003_merge_20261127_1612")]
AFTER = [("listening", "0005_dash_trial_study_required")]


@pytest.mark.django_db(transaction=True)
def test_migration_backfills_each_trials_study():
    """Trials written before the column existed take their participant's study."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    Study, Stimulus, Participant, Trial = (apps.get_model("listening", name)
                                           for name in ("Study", "Stimulus", "Participant", "Trial"))
    made = {}
    for number in range(2):
        study = Study.objects.create(name=f"old {number}", comparisons=[["a", "b"]], quota_per_pair=1,
                                     completion_code="C", media_dir=f"m{number}")
        clip = Stimulus.objects.create(study=study, excerpt="e", system="a", file_name="f", sha256="0" * 64,
                                       n_bytes=1, duration_s=1.0, loudness_lufs=-23.0)
        for person in range(2):
            participant = Participant.objects.create(study=study, external_id=f"p{person}", session_nonce="n")
            trial = Trial.objects.create(participant=participant, position=1, kind="rating", stimulus_left=clip,
                                         answer_key=f"k{number}{person}", lease_expires_at=timezone.now())
            made[trial.pk] = study.pk
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    apps = executor.loader.project_state(AFTER).apps
    backfilled = dict(apps.get_model("listening", "Trial").objects.values_list("pk", "study_id"))
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert backfilled == made and len(set(made.values())) == 2
