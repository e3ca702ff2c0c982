"""Celery task of the listening app: render a study's stimuli (listening.services.rendering).

`acks_late`: a worker killed mid-rendering leaves the message unacknowledged and the broker
hands it out again; `render_study` makes a second delivery harmless. An error is recorded on
the study (`failed`, with the reason shown on its staff page), then raised again so Celery
reports it too.
"""

from celery import shared_task

from listening.services import rendering


@shared_task(name=rendering.TASK_NAME, acks_late=True)
def render_study(study_id: int) -> int:
    try:
        return rendering.render_study(study_id)
    except Exception as error:  # recorded with its reason, then re-raised: nothing hidden
        rendering.fail_rendering(study_id, f"{type(error).__name__}: {error}")
        raise
