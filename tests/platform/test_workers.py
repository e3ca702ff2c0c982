"""Real Celery workers on each supported broker run tasks and store results in the database."""

import pytest
from django_celery_results.models import TaskResult

from evalsite.tasks.diagnostics import worker_report
from tests.conftest import current_database_url
from tests.progress import process_progress, wait_for_progress

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def run_report_through_worker(celery_worker_factory, broker_url):
    worker = celery_worker_factory(broker_url)
    result = worker.submit(worker_report)
    # The task's state and the worker's log and CPU time must keep moving until it is done.
    progress = process_progress(worker.process, worker.log_path)
    wait_for_progress(result.ready, lambda: (result.state, progress()), what="the worker's report",
                      details=worker.log)
    report = result.get(timeout=10)
    assert report["pid"] == worker.process.pid or report["pid"] > 0
    # The worker wrote its result into the same (test) database the test reads.
    assert TaskResult.objects.filter(task_id=result.id, status="SUCCESS").exists()
    assert current_database_url().endswith(report["database_name"])
    return report


def test_worker_on_redis(celery_worker_factory, redis_url):
    run_report_through_worker(celery_worker_factory, redis_url)


def test_worker_on_rabbitmq(celery_worker_factory, rabbitmq_url):
    run_report_through_worker(celery_worker_factory, rabbitmq_url)


def test_worker_on_embedded_sqlalchemy_broker(celery_worker_factory, tmp_path):
    run_report_through_worker(celery_worker_factory, f"sqla+sqlite:///{tmp_path}/broker.sqlite3")
