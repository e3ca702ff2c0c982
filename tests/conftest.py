"""Fixtures shared by every test: real services, real Celery workers, synthetic audio.

Services (PostgreSQL, Redis, RabbitMQ) are reached over real connections. Where one is
unreachable the test is skipped on a laptop but FAILS under `CI=true`: CI never passes by
skipping what it was meant to exercise.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.progress import Stalled, process_progress, wait_for_progress

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"

# One compute thread per process, in this one and every worker or CLI it starts (they inherit
# the environment). The tiny models of the tests gain nothing from intra-op threads, and
# OpenMP threads spin-wait for each other: with a worker, this process and other jobs sharing
# two cores, a tiny three-stage clip took 55 s at 2 threads against 3.6 s at 1 (measured).
# Set before torch and numpy are first imported; a value the user exported is kept.
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

POSTGRES_URL = os.environ.get("HAFM_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("HAFM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
RABBITMQ_URL = os.environ.get("HAFM_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")

_DB_FIXTURES = {"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback",
                "live_server", "admin_client", "admin_user", "django_user_model", "client_with_db"}


# pytest-timeout's fixed 600 s (pyproject) fails a test that is merely slow on a busy machine.
# Tests with real workers wait on PROGRESS instead (tests/progress.py: they fail after 120 s
# with nothing moving); for them the fixed limit is only a net for a hang outside those waits.
WORKER_TEST_HANG_NET_S = 3600


def pytest_collection_modifyitems(config, items):
    """Mark every test that touches the database `db`, so the PostgreSQL pass can select them;
    give tests with real Celery workers the hang net instead of the fixed time limit."""
    from django.test import TransactionTestCase

    for item in items:
        if "celery_worker_factory" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.workers)
            if not item.get_closest_marker("timeout"):
                item.add_marker(pytest.mark.timeout(WORKER_TEST_HANG_NET_S))
        cls = getattr(item, "cls", None)
        uses_db = (
            item.get_closest_marker("django_db") is not None
            or bool(_DB_FIXTURES & set(getattr(item, "fixturenames", ())))
            or (cls is not None and issubclass(cls, TransactionTestCase))
        )
        if uses_db:
            item.add_marker(pytest.mark.db)


def _reachable(url: str) -> str | None:
    """None when the service answers, else the reason."""
    if url.startswith("postgres"):
        import psycopg

        try:
            psycopg.connect(url.replace("postgres://", "postgresql://", 1), connect_timeout=3).close()
        except psycopg.Error as error:
            return str(error).strip().splitlines()[0]
        return None
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
    except Exception as error:  # noqa: BLE001 - any transport error means unreachable
        return f"{type(error).__name__}: {error}"
    return None


def require_service(name: str, url: str) -> str:
    reason = _reachable(url)
    if reason is not None:
        message = f"{name} at {url} is unreachable ({reason})"
        if IN_CI:
            pytest.fail(f"{message}; CI=true requires every service", pytrace=False)
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return require_service("PostgreSQL", POSTGRES_URL)


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require_service("Redis", REDIS_URL)


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    return require_service("RabbitMQ", RABBITMQ_URL)


def current_database_url() -> str:
    """The URL of the database the running test uses (pytest-django's test database)."""
    from evalsite.services.connectivity import database_url

    return database_url()


@dataclass
class WorkerProcess:
    """A real `celery worker` subprocess on its own queue; `submit` sends it a task."""

    broker_url: str
    queue: str
    process: subprocess.Popen
    log_path: Path

    def submit(self, task, *args, **kwargs):
        from evalsite.celery import app

        with app.connection_for_write(self.broker_url) as connection:
            return task.apply_async(args=args, kwargs=kwargs, queue=self.queue, connection=connection)

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no chance to acknowledge or clean up."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def celery_worker_factory(tmp_path):
    """Start real Celery workers against the test database: `start(broker_url, queue=None, env=None)`.

    Use from a `transactional_db` test so the worker sees committed rows. Every worker is
    killed at the end of the test: its queue is the test's own, so nothing is left to finish,
    and a warm shutdown waits out the broker's poll (4.5 s per worker, measured).
    """
    workers: list[WorkerProcess] = []

    def start(broker_url: str, queue: str | None = None, env: dict | None = None) -> WorkerProcess:
        queue = queue or f"test-{uuid.uuid4().hex[:10]}"
        log_path = tmp_path / f"worker-{len(workers)}-{queue}.log"
        worker_env = {
            **os.environ,
            "DATABASE_URL": current_database_url(),
            "CELERY_BROKER_URL": broker_url,
            "HAFM_CELERY_QUEUE": queue,
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        command = [sys.executable, "-m", "celery", "-A", "evalsite", "worker", "--pool", "solo",
                   "--concurrency", "1", "--queues", queue, "--hostname", f"{queue}-{len(workers)}@%h",
                   "--without-gossip", "--without-mingle", "--loglevel", "INFO"]
        log = open(log_path, "w")
        process = subprocess.Popen(command, cwd=ROOT, env=worker_env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        worker = WorkerProcess(broker_url, queue, process, log_path)
        workers.append(worker)
        # Start-up (imports, broker connection) is slow on a busy machine: wait while the
        # worker uses CPU or writes its log, fail when it dies or stalls.
        try:
            wait_for_progress(lambda: "ready." in worker.log() or process.poll() is not None,
                              process_progress(process, log_path), what=f"a celery worker on {broker_url}")
        except Stalled as error:
            worker.stop()
            pytest.fail(f"{error}\n{worker.log()[-3000:]}", pytrace=False)
        if process.poll() is not None:
            pytest.fail(f"celery worker did not start on {broker_url}:\n{worker.log()[-3000:]}", pytrace=False)
        return worker

    yield start
    for worker in workers:
        worker.kill()


@pytest.fixture(scope="session")
def synthetic_track():
    """One seeded synthetic multitrack (12 s, 44.1 kHz) with its musical metadata."""
    from hafm_core.synth import synthesize_multitrack

    return synthesize_multitrack(seed=0)


@pytest.fixture(scope="session")
def stempeg_sample_path() -> Path:
    """The real MUSDB18-format stem that the stempeg wheel ships (decoding needs ffmpeg)."""
    import shutil

    import stempeg

    if shutil.which("ffmpeg") is None:
        message = "ffmpeg is not installed (apt-get install ffmpeg); needed to decode .stem.mp4"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return Path(stempeg.example_stem_path())
