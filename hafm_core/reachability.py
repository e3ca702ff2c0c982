"""Is the database or the Celery broker reachable? Checks that answer within a few seconds.

Used by `hafm doctor` (a report) and by the commands that need a service (`hafm benchmark`,
`hafm fad --distributed`), which stop with one line naming the service and its URL, the
password hidden, instead of a traceback after a long retry loop.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from hafm_core.errors import HafmError

CHECK_TIMEOUT_S = 3.0


class ServiceUnavailableError(HafmError):
    """A configured service (database, broker) does not answer; the message names it and its URL."""


def redact(url: str) -> str:
    """The URL with its password replaced by ***, safe to print."""
    parts = urlsplit(url)
    if parts.password:
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
    return url


def check_database(url: str, timeout_s: float = CHECK_TIMEOUT_S) -> dict:
    """{"ok": bool, "detail": str} for a sqlite:// or postgres:// URL."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        import sqlite3
        from pathlib import Path

        path = Path(parts.path[1:])  # sqlite:////abs -> /abs, sqlite:///rel -> rel
        if not path.parent.exists():
            return {"ok": False, "detail": f"folder {path.parent} does not exist"}
        try:
            sqlite3.connect(path, timeout=timeout_s).execute("SELECT 1").close()
        except sqlite3.Error as error:
            return {"ok": False, "detail": str(error)}
        return {"ok": True, "detail": f"SQLite file {path}"}
    import psycopg

    try:
        conninfo = url.replace("postgres://", "postgresql://", 1).replace("pgsql://", "postgresql://", 1)
        with psycopg.connect(conninfo, connect_timeout=max(1, int(timeout_s))) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
    except psycopg.Error as error:
        return {"ok": False, "detail": _one_line(str(error))}
    return {"ok": True, "detail": f"PostgreSQL {version}"}


def check_broker(url: str, timeout_s: float = CHECK_TIMEOUT_S) -> dict:
    """{"ok": bool, "detail": str}: one connection attempt to the Celery broker."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=timeout_s) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout_s)
            transport = conn.transport_cls
    except Exception as error:  # noqa: BLE001 - kombu raises transport-specific errors; report them all
        return {"ok": False, "detail": _one_line(f"{type(error).__name__}: {error}")}
    return {"ok": True, "detail": f"transport {transport}"}


def within(check, url: str, timeout_s: float = CHECK_TIMEOUT_S) -> dict:
    """`check(url, timeout_s)`, but never longer than about `timeout_s`: a server that accepts the
    connection and then says nothing (a hung or firewalled service) must not hang the caller, and
    not every client library bounds the read of the first reply."""
    import threading

    outcome: dict = {"ok": False, "detail": f"no answer within {timeout_s:g} s"}

    def attempt() -> None:
        outcome.update(check(url, timeout_s))

    thread = threading.Thread(target=attempt, name=f"check {redact(url)}", daemon=True)
    thread.start()
    thread.join(timeout_s + 1.0)
    return dict(outcome) if not thread.is_alive() else {"ok": False, "detail": f"no answer within {timeout_s:g} s"}


def require(database_url: str | None = None, broker_url: str | None = None,
            timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """Raise `ServiceUnavailableError` for the first of the given services that does not answer."""
    for name, url, check in (("database", database_url, check_database), ("broker", broker_url, check_broker)):
        if url is None:
            continue
        outcome = within(check, url, timeout_s)
        if not outcome["ok"]:
            raise ServiceUnavailableError(f"the {name} at {redact(url)} is unreachable: {outcome['detail']}")


def _one_line(text: str) -> str:
    return " ".join(text.split())
