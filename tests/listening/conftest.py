"""Fixtures for listening tests: clip files from synthetic multitracks, and studies made from them."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import soundfile as sf

from hafm_core.synth import synthesize_multitrack

SYSTEMS = ("three-stage", "two-stage", "random", "ground-truth")
CLIP_RATE_HZ = 16_000


def write_clips(folder, n_excerpts: int = 2, duration_s: float = 2.0, systems=SYSTEMS) -> list[dict]:
    """Vocal and per-system accompaniment files for `n_excerpts` synthetic tracks.

    ground-truth is the real accompaniment; three-stage and two-stage are noisy, quieter
    copies (so level differences exist before loudness matching); random is another
    track's accompaniment.
    """
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    tracks = [synthesize_multitrack(seed, duration_s, CLIP_RATE_HZ) for seed in range(n_excerpts + 1)]
    rng = np.random.default_rng(0)
    for index, track in enumerate(tracks[:n_excerpts]):
        excerpt = f"track{index}"
        vocal_path = folder / f"{excerpt}-vocal.wav"
        sf.write(vocal_path, track.stems["vocals"], CLIP_RATE_HZ)
        accompaniment = track.accompaniment / np.abs(track.accompaniment).max()
        other = tracks[index + 1].accompaniment / np.abs(tracks[index + 1].accompaniment).max()
        versions = {
            "ground-truth": 0.9 * accompaniment,
            "three-stage": 0.5 * accompaniment + 0.01 * rng.standard_normal(accompaniment.size),
            "two-stage": 0.25 * accompaniment + 0.03 * rng.standard_normal(accompaniment.size),
            "random": 0.7 * other,
        }
        for system in systems:
            path = folder / f"{excerpt}-{system}.wav"
            sf.write(path, versions[system].astype(np.float32), CLIP_RATE_HZ)
            entries.append({"excerpt": excerpt, "system": system, "vocal_path": str(vocal_path),
                            "accompaniment_path": str(path), "tempo_bpm": track.tempo_bpm})
    return entries


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def eager_tasks():
    """Celery tasks run in this process when sent (a study's rendering), without a broker."""
    from evalsite.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture(scope="session")
def clip_entries(tmp_path_factory):
    return write_clips(tmp_path_factory.mktemp("clips"))


# Study fields that create_study does not take; make_study sets them after creation. Tests
# default to no minimum listening time (an attack test sets a real one and proves it holds).
STUDY_FIELDS = {"pair_listen_share": 0.0, "rating_listen_share": 0.0, "no_slot_code": "NOSLOT7",
                "external_id_pattern": None, "joins_per_address": None, "join_window_s": None}


def prolific_id(label: str) -> str:
    """A well-formed Prolific id (24 hex characters) standing for `label`."""
    return hashlib.sha256(label.encode()).hexdigest()[:24]


@pytest.fixture
def make_study(clip_entries):
    """create_study with small, fast defaults; keyword arguments override them."""
    from listening.models import Study
    from listening.services import create_study

    counter = iter(range(1000))

    def make(**overrides):
        fields = {key: overrides.pop(key, default) for key, default in STUDY_FIELDS.items()}
        options = dict(name=f"study {next(counter)}", stimuli=clip_entries,
                       comparisons=[("three-stage", "ground-truth"), ("three-stage", "random")],
                       completion_code="CODE123", screened_out_code="SCREENED9", quota_per_pair=3,
                       rating_quota_per_clip=2, preference_trials=4, rating_trials=2, catch_rate=0.25,
                       sample_rate_hz=CLIP_RATE_HZ)
        options.update(overrides)
        study = create_study(**options)
        Study.objects.filter(pk=study.pk).update(**{k: v for k, v in fields.items() if v is not None})
        study.refresh_from_db()
        return study

    return make


def start_trials(study, external_id: str | None = None):
    """A participant past consent, screening and practice, ready for trials (`external_id`: a
    label, joined as the Prolific id `prolific_id(label)`)."""
    from listening import services
    from listening.models import Participant

    participant = services.join_study(study, prolific_id(external_id) if external_id else None)
    if participant.status == Participant.Status.STARTED:
        Participant.objects.filter(pk=participant.pk).update(status=Participant.Status.IN_PROGRESS,
                                                             screening_passed=True)
    Participant.objects.filter(pk=participant.pk).update(practice_done=True)
    participant.refresh_from_db()
    return participant


def deliver(participant, trial, sides=None):
    """Record the server delivering every byte of the trial's clips, as the audio view does."""
    from listening import services

    for side in sides or (("left", "right") if trial.is_pair else ("left",)):
        size = getattr(trial, f"stimulus_{side}").n_bytes
        services.record_delivery(participant, trial.public_id, side, 0, size, size)


def answer(participant, trial, chosen="left", scores=None):
    """Play (and be delivered) what the trial needs, then answer it through the services."""
    from listening import services

    deliver(participant, trial)
    for side in ("left", "right") if trial.is_pair else ("left",):
        services.record_play(participant, trial.public_id, side, "play")
        services.record_play(participant, trial.public_id, side, "ended")
    if trial.is_pair:
        return services.submit_answer(participant, trial.public_id, trial.answer_key, chosen=chosen)
    attributes = participant.study.attributes
    return services.submit_answer(participant, trial.public_id, trial.answer_key,
                                  ratings=scores or {a: 3 for a in attributes})
