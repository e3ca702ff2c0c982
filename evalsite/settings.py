"""Django settings, read from the environment (see hafm_core.config.ENVIRONMENT).

Embedded defaults need no service: SQLite, and Celery over the SQLAlchemy transport on
SQLite with results in the database. `DATABASE_URL` and `CELERY_BROKER_URL` switch to
PostgreSQL and Redis or RabbitMQ.
"""

from __future__ import annotations

import os
import sys

import dj_database_url

from hafm_core import config
from hafm_core.errors import ConfigError

try:
    DEBUG = config.env_bool("DEBUG", True)
    _DATABASE_URL = config.database_url()
    CELERY_BROKER_URL = config.broker_url()
    CELERY_TASK_ALWAYS_EAGER = config.env_bool("CELERY_TASK_ALWAYS_EAGER", False)
    _VISIBILITY_TIMEOUT_S = config.visibility_timeout_s()
    SECURE_SSL = config.env_bool("SECURE_SSL", False)
    # Reverse proxies whose X-Forwarded-For names the client (listening.client_address).
    HAFM_TRUSTED_PROXIES = config.trusted_proxies()
except ConfigError as error:
    # One line naming the variable, not a traceback through Django's loader.
    print(f"configuration error: {error}", file=sys.stderr)
    raise SystemExit(2) from None

BASE_DIR = config.PROJECT_ROOT
VAR_DIR = config.var_dir()
VAR_DIR.mkdir(parents=True, exist_ok=True)

_DEV_SECRET_KEY = "django-insecure-hafm-bench-development-only"
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        print("configuration error: SECRET_KEY must be set when DEBUG is off", file=sys.stderr)
        raise SystemExit(2)
    SECRET_KEY = _DEV_SECRET_KEY

ALLOWED_HOSTS = config.env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = config.env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_results",
    "evalsite",
    "listening",
    "analysis",
]

MIDDLEWARE = [
    # First: answers every failure under /listen/ with a plain page, before Host checks and CSRF.
    "listening.middleware.ListenerErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "evalsite.urls"
WSGI_APPLICATION = "evalsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": dj_database_url.parse(_DATABASE_URL, conn_max_age=60)}
# Test databases carry the test process id, so concurrent test runs on one machine never
# share (and destroy) each other's database.
_TEST_DB_SUFFIX = os.environ.get("HAFM_TEST_DB_SUFFIX", str(os.getpid()))
DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{_TEST_DB_SUFFIX}"}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several processes (web, worker, CLI) share the file: wait for locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE",
                                       "init_command": "PRAGMA journal_mode=WAL;"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-hafm-{_TEST_DB_SUFFIX}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
MEDIA_ROOT = config.media_dir()
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

LOGIN_URL = "admin:login"

# Staff uploads of study clips (listening.uploads): checked as they stream in, before decoding.
HAFM_UPLOAD_MAX_FILE_BYTES = int(os.environ.get("HAFM_UPLOAD_MAX_FILE_BYTES", str(100 * 1024**2)))
HAFM_UPLOAD_MAX_TOTAL_BYTES = int(os.environ.get("HAFM_UPLOAD_MAX_TOTAL_BYTES", str(1024**3)))
HAFM_UPLOAD_MAX_DURATION_S = float(os.environ.get("HAFM_UPLOAD_MAX_DURATION_S", "600"))

# Celery: broker from the environment, results in this database (django-celery-results).
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TRACK_STARTED = True
# Workers and clients of one deployment share a queue name; tests use a fresh one per worker.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("HAFM_CELERY_QUEUE", "hafm")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
if CELERY_BROKER_URL.startswith("redis"):
    # A task unacknowledged this long is handed to another worker (acks_late + a killed worker):
    # 300 s by default, so a killed worker's task is recovered in minutes (see config).
    # Socket timeouts: a Redis that accepts connections but never answers is an error in
    # seconds (the run waits `undispatched`), not a sender hung forever.
    # Restore sweeps: kombu looks for expired unacknowledged tasks only on every 10th idle poll
    # by default (20 s apart for a solo worker); every poll is one cheap sorted-set query, and a
    # killed worker's task then comes back right after its visibility timeout.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": _VISIBILITY_TIMEOUT_S,
                                       "socket_connect_timeout": 5, "socket_timeout": 30,
                                       "unacked_restore_throttle": 1, "unacked_restore_interval": 2}

if not DEBUG:
    SESSION_COOKIE_SECURE = SECURE_SSL
    CSRF_COOKIE_SECURE = SECURE_SSL
    SECURE_SSL_REDIRECT = SECURE_SSL
    SECURE_HSTS_SECONDS = 31_536_000 if SECURE_SSL else 0
    SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_SSL
    SECURE_HSTS_PRELOAD = SECURE_SSL
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
