"""Configuration from the environment, shared by the CLI, the workers and the Django settings.

Every value has an embedded default that needs no service: a SQLite database and a Celery
broker on SQLite through the SQLAlchemy transport. An invalid value is a `ConfigError`
whose one-line message names the variable.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import urlsplit

from hafm_core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DATABASE_SCHEMES = ("sqlite", "postgres", "postgresql", "pgsql")
BROKER_SCHEMES = ("sqla+sqlite", "sqla+postgresql", "redis", "rediss", "amqp", "amqps", "pyamqp", "memory")

# name -> (default description, meaning); the README's configuration table mirrors this.
ENVIRONMENT = {
    "HAFM_VAR_DIR": ("./var", "folder for the embedded database, broker, media and caches"),
    "DATABASE_URL": ("sqlite:///$HAFM_VAR_DIR/hafm.sqlite3", "database; postgres://... for PostgreSQL"),
    "CELERY_BROKER_URL": ("sqla+sqlite:///$HAFM_VAR_DIR/celery-broker.sqlite3",
                          "Celery broker: redis://..., amqp://... or sqla+sqlite:///..."),
    "HAFM_CELERY_QUEUE": ("hafm", "queue that clients send to and workers consume"),
    "HAFM_WEIGHTS_DIR": ("$HAFM_VAR_DIR/weights", "folder holding model weights (see `hafm doctor`)"),
    "HAFM_MEDIA_DIR": ("$HAFM_VAR_DIR/media", "generated audio, stimuli and uploads"),
    "HAFM_CACHE_DIR": ("$HAFM_VAR_DIR/cache", "embedding, token and vocal pitch caches"),
    "HAFM_VISIBILITY_TIMEOUT_S": ("300", "Redis: seconds before an unacknowledged task goes to another worker"),
    "DEBUG": ("true", "Django debug mode; false in production"),
    "SECRET_KEY": ("a fixed development key when DEBUG is on", "required when DEBUG is off"),
    "ALLOWED_HOSTS": ("127.0.0.1,localhost", "comma-separated host names the site answers"),
    "CSRF_TRUSTED_ORIGINS": ("(none)", "comma-separated origins, e.g. https://bench.example.org"),
    "HAFM_TRUSTED_PROXIES": ("(none)", "comma-separated addresses or CIDRs of reverse proxies whose "
                             "X-Forwarded-For names the client (listener join limits)"),
    "SECURE_SSL": ("false", "with DEBUG off: redirect to HTTPS, secure cookies, HSTS"),
    "CELERY_TASK_ALWAYS_EAGER": ("false", "run tasks in-process (debugging only)"),
    "HAFM_DEVICE": ("cuda when available, else cpu", "torch device for models and embedders"),
}


def var_dir() -> Path:
    return Path(os.environ.get("HAFM_VAR_DIR", PROJECT_ROOT / "var")).expanduser().resolve()


def _sub_dir(name: str, default: str) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else var_dir() / default


def media_dir() -> Path:
    return _sub_dir("HAFM_MEDIA_DIR", "media")


def cache_dir() -> Path:
    return _sub_dir("HAFM_CACHE_DIR", "cache")


def _checked_url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    scheme = urlsplit(value).scheme
    if not scheme or scheme not in schemes:
        raise ConfigError(
            f"{name}={value!r} is not valid: expected a URL starting with one of "
            + ", ".join(f"{s}://" for s in schemes)
        )
    if scheme.startswith(("postgres", "pgsql")) and not urlsplit(value).path.strip("/"):
        raise ConfigError(f"{name}={value!r} names no database (expected postgres://user@host:port/NAME)")
    return value


def database_url() -> str:
    value = os.environ.get("DATABASE_URL") or f"sqlite:///{var_dir() / 'hafm.sqlite3'}"
    return _checked_url("DATABASE_URL", value, DATABASE_SCHEMES)


def broker_url() -> str:
    value = os.environ.get("CELERY_BROKER_URL") or f"sqla+sqlite:///{var_dir() / 'celery-broker.sqlite3'}"
    return _checked_url("CELERY_BROKER_URL", value, BROKER_SCHEMES)


DEFAULT_VISIBILITY_TIMEOUT_S = 300


def visibility_timeout_s() -> int:
    """Redis broker: seconds a task taken by a worker stays invisible before another worker gets it.

    A killed worker's task is recovered after this long, so it is minutes, not hours; every
    task is sized to finish well inside it (one clip, one system's measurement, one FAD shard)
    and is idempotent, so a task redelivered while still running is never counted twice.
    (RabbitMQ needs no timeout: a dead worker's unacknowledged message returns at once.)
    """
    value = os.environ.get("HAFM_VISIBILITY_TIMEOUT_S") or str(DEFAULT_VISIBILITY_TIMEOUT_S)
    try:
        seconds = int(value)
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise ConfigError(f"HAFM_VISIBILITY_TIMEOUT_S={value!r} is not valid: expected a whole number of "
                          "seconds >= 1 (default 300)")
    return seconds


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={value!r} is not a boolean (use true or false)")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def trusted_proxies() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """`HAFM_TRUSTED_PROXIES`: the reverse proxies whose X-Forwarded-For header is believed
    (addresses or CIDR networks, comma-separated; none by default, so the header is ignored)."""
    networks = []
    for entry in env_list("HAFM_TRUSTED_PROXIES", ""):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ConfigError(f"HAFM_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR network "
                              "(e.g. 10.0.0.2,10.1.0.0/16)") from None
    return tuple(networks)


def check_device(name: str, source: str = "--device") -> str:
    """`name` if torch can run on it here, else a `ConfigError` naming `source` and what is valid.

    Accepted: `cpu`, `cuda` / `cuda:N` when that GPU is visible, `mps` when available.
    """
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"{source}={name!r} is not a torch device; use cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return name
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"{source}={name!r}: no CUDA GPU is visible to torch; use cpu")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"{source}={name!r}: only {count} CUDA GPU(s) are visible (cuda:0..cuda:{count - 1})")
        return name
    if device.type == "mps" and torch.backends.mps.is_available():
        return name
    raise ConfigError(f"{source}={name!r} is not available on this machine; use cpu"
                      + (" or cuda" if torch.cuda.is_available() else ""))


def torch_device() -> str:
    """`HAFM_DEVICE` if set (checked: `ConfigError` if torch cannot use it), else `cuda` when a
    GPU is visible, else `cpu`."""
    if os.environ.get("HAFM_DEVICE"):
        return check_device(os.environ["HAFM_DEVICE"], "HAFM_DEVICE")
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
