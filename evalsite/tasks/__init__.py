"""Celery tasks of the benchmark site: thin callers of services and hafm_core functions.

Celery's autodiscovery imports `evalsite.tasks`; each module below is imported here.
"""

from evalsite.tasks import benchmarks, diagnostics, fad  # noqa: F401
