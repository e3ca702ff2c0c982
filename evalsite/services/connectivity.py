"""The services a command needs, checked before it starts: one line naming what is down.

    require_services(database=True, broker=True)

raises `ServiceUnavailableError` ("the broker at redis://:***@host:6379/0 is unreachable: ...")
within a few seconds, instead of a traceback after Celery's or psycopg's retries. The URLs are
the ones this process really uses: Django's database settings and the Celery app's broker.
"""

from __future__ import annotations

from hafm_core.reachability import CHECK_TIMEOUT_S, ServiceUnavailableError, redact, require

__all__ = ["ServiceUnavailableError", "broker_url", "database_url", "redact", "require_services"]


def database_url() -> str:
    """The URL of the database Django connects to (its test database under pytest)."""
    from django.db import connection

    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = settings.get("USER") or "postgres"
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"


def broker_url() -> str:
    from evalsite.celery import app

    return app.conf.broker_url


def require_services(database: bool = True, broker: bool = True, timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """Raise `ServiceUnavailableError` naming the first of the wanted services that does not answer."""
    require(database_url() if database else None, broker_url() if broker else None, timeout_s)
