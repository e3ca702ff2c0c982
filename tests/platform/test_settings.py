"""Settings come from the environment; a bad value is one line naming the variable."""

import os
import secrets
import subprocess
import sys

from tests.conftest import ROOT


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE")}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


def test_bad_database_url_is_one_line_naming_the_variable():
    result = manage("check", DATABASE_URL="mysql://root@localhost/x")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DATABASE_URL" in lines[0] and "mysql://" in lines[0]


def test_unknown_broker_scheme_is_one_line_naming_the_variable():
    result = manage("check", CELERY_BROKER_URL="kafka://127.0.0.1:9092")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "CELERY_BROKER_URL" in result.stderr


def test_postgres_url_without_database_name_is_rejected():
    result = manage("check", DATABASE_URL="postgres://postgres@127.0.0.1:5432")
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr and "names no database" in result.stderr


def test_secret_key_is_required_when_debug_is_off():
    result = manage("check", DEBUG="false")
    assert result.returncode == 2
    assert "SECRET_KEY" in result.stderr


def test_invalid_boolean_names_the_variable():
    result = manage("check", DEBUG="maybe")
    assert result.returncode == 2
    assert "DEBUG" in result.stderr


def test_check_deploy_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", DEBUG="false",
                    SECRET_KEY=secrets.token_urlsafe(50), SECURE_SSL="true",
                    ALLOWED_HOSTS="bench.example.org")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_defaults_use_sqlite_and_the_sqlalchemy_broker():
    from django.conf import settings

    assert settings.DATABASES["default"]["ENGINE"].endswith(("sqlite3", "postgresql"))
    if not os.environ.get("CELERY_BROKER_URL"):
        assert settings.CELERY_BROKER_URL.startswith("sqla+sqlite:///")
    assert settings.CELERY_RESULT_BACKEND == "django-db"
