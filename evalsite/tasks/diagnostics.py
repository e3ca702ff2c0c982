"""A task that tells which worker ran it and which database it sees (doctor and tests)."""

import os
import socket

from celery import shared_task
from django.db import connection


@shared_task(name="evalsite.diagnostics.worker_report", acks_late=True)
def worker_report() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "database_vendor": connection.vendor,
        "database_name": str(connection.settings_dict["NAME"]),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
