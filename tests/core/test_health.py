from __future__ import annotations

import pytest
from django.test import Client
from django.test.utils import override_settings

pytestmark = pytest.mark.django_db


def test_healthz_is_alive_without_a_key() -> None:
    assert Client().get("/healthz").json() == {"status": "ok"}


def test_readyz_checks_the_database() -> None:
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok"}}


def test_readyz_checks_redis_when_configured(redis_url: str) -> None:
    with override_settings(REDIS_URL=redis_url):
        assert Client().get("/readyz").json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_is_503_when_redis_is_down() -> None:
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"] == "unavailable"
