"""GET /tools/jobs/:id/stream goes through the same base view as every route: the rate limit, the
JSON errors of authentication and methods, and the declared access check (tests/core)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.test.utils import override_settings

from apps.tenants.models import Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    cache.clear()


def _job(client: Any) -> str:
    response = client.post("/tools/calculator?async=true", {"expression": "6*7"}, format="json")
    assert response.status_code == 202
    return str(response.json()["job_id"])


@override_settings(RATE_LIMIT_PER_MINUTE=3)
def test_the_stream_is_rate_limited_like_every_route(client_for: Callable[..., Any], alice: Tenant) -> None:
    client = client_for(alice)
    stream = f"/tools/jobs/{_job(client)}/stream"  # the POST was the first request of the minute
    first, second = client.get(stream), client.get(stream, HTTP_ACCEPT="text/event-stream")
    assert [first.status_code, second.status_code] == [200, 200]
    assert first["Content-Type"].startswith("text/event-stream")
    limited = client.get(stream, HTTP_ACCEPT="text/event-stream")
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert int(limited["Retry-After"]) >= 1


def test_the_stream_answers_json_errors(client_for: Callable[..., Any], alice: Tenant) -> None:
    stream = f"/tools/jobs/{_job(client_for(alice))}/stream"
    anonymous = Client().get(stream, HTTP_ACCEPT="text/event-stream")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthenticated"
    wrong_method = client_for(alice).post(stream, {}, format="json")
    assert wrong_method.status_code == 405 and wrong_method.json()["status"] == 405
