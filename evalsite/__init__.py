"""The Django project: settings, the Celery app, benchmark records and pages."""

from evalsite.celery import app as celery_app

__all__ = ["celery_app"]
