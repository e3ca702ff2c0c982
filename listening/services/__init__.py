"""Writes of the listening app; views, admin and commands call these and nothing else writes.

`create_study` is the entry point for other apps (e.g. a benchmark run's generated clips).
"""

from listening.services.participation import (
    answer_screening,
    expire_idle_participants,
    join_study,
    return_participation,
    screening_trials,
    touch,
)
from listening.services.studies import StimulusSource, create_study, set_study_status
from listening.services.trials import (
    next_trial,
    practice_trial,
    record_delivery,
    record_play,
    record_screening_delivery,
    submit_answer,
)

__all__ = [
    "StimulusSource", "answer_screening", "create_study", "expire_idle_participants", "join_study",
    "next_trial", "practice_trial", "record_delivery", "record_play", "record_screening_delivery", "return_participation", "screening_trials",
    "set_study_status", "submit_answer", "touch",
]
