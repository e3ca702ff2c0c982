"""Writes of the listening app; views, admin and commands call these and nothing else writes.

`create_study` is the entry point for other apps (e.g. a benchmark run's generated clips); the
staff upload page plans a study (`plan_study`) and leaves its rendering to a worker
(`dispatch_rendering`, `render_again`).
"""

from listening.services.participation import (
    answer_screening,
    expire_idle_participants,
    join_study,
    return_participation,
    screening_trials,
    touch,
)
from listening.services.rendering import dispatch_rendering, render_again
from listening.services.studies import StimulusSource, create_study, plan_study, set_study_status
from listening.services.trials import (
    next_trial,
    practice_trial,
    record_delivery,
    record_play,
    record_screening_delivery,
    submit_answer,
)

__all__ = [
    "StimulusSource", "answer_screening", "create_study", "dispatch_rendering", "expire_idle_participants",
    "join_study", "next_trial", "plan_study", "practice_trial", "render_again", "record_delivery", "record_play", "record_screening_delivery", "return_participation", "screening_trials",
    "set_study_status", "submit_answer", "touch",
]
