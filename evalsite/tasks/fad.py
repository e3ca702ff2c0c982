"""FAD map/reduce tasks: thin callers of `evalsite.services.fad`. Arguments are ids only.

`acks_late`: a worker killed mid-shard leaves the message unacknowledged and the broker hands
it out again; the services make a second delivery harmless. Database hiccups are retried.
Workers: one per GPU, `CUDA_VISIBLE_DEVICES=N celery -A evalsite worker --pool solo
--concurrency 1`; without GPUs, one solo worker per CPU slot (set OMP_NUM_THREADS).
"""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from evalsite.services import fad as fad_services

RETRY = {"autoretry_for": (OperationalError, InterfaceError), "retry_backoff": True, "max_retries": 5}


@shared_task(name="evalsite.fad.embed_shard", acks_late=True, **RETRY)
def embed_shard(shard_id: int) -> dict:
    return fad_services.run_shard(shard_id)


@shared_task(name="evalsite.fad.reduce", acks_late=True, **RETRY)
def reduce_fad(result_id: str) -> dict:
    result = fad_services.reduce(result_id)
    return {"result": str(result.id), "status": result.status, "fad": result.fad}
