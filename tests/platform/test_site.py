import pytest

pytestmark = pytest.mark.django_db


def test_home_page_shows_code_version(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"HAFM Bench" in response.content


def test_health_check_queries_the_database(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_admin_requires_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
