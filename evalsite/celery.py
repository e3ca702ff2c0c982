"""The Celery app. Workers: `celery -A evalsite worker --pool solo --concurrency 1`.

One worker per GPU (`CUDA_VISIBLE_DEVICES=N`), solo pool: a task owns its device and no
process pool runs inside a task. Without GPUs, one worker per CPU slot.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")

app = Celery("evalsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
