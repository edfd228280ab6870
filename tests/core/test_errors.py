"""Every error is PROTOCOL.md §2 JSON, whatever produced it; no trace ever reaches a client."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.test.utils import override_settings

from apps.tenants.models import Tenant
from tests.conftest import SlopClient

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.test_urls")]


def test_unknown_route_is_json_404() -> None:
    response = Client().get("/no/such/thing")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"error": "No endpoint at /no/such/thing", "code": "not_found", "status": 404}


def test_wrong_method_is_405(alice_client: SlopClient) -> None:
    response = alice_client.delete("/info")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_malformed_json_is_400(alice_client: SlopClient) -> None:
    response = alice_client.post("/_test/tools/calculator", data="{not json", content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_request" and body["error"].startswith("Malformed request body")


def test_body_that_is_not_an_object_is_400(alice_client: SlopClient) -> None:
    response = alice_client.post("/_test/tools/calculator", data="[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert "JSON object" in response.json()["error"]


def test_wrong_content_type_is_415(alice_client: SlopClient) -> None:
    response = alice_client.post("/_test/tools/calculator", data="expression=1", content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


@override_settings(MAX_BODY_BYTES=2048)
def test_body_over_the_limit_is_413(alice_client: SlopClient) -> None:
    response = alice_client.post("/_test/tools/calculator", {"x": "y" * 5000}, format="json")
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_unhandled_exception_is_500_without_a_trace(
    alice_client: SlopClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = alice_client.get("/_test/crash", HTTP_X_REQUEST_ID="req-abc-123")
    assert response.status_code == 500
    body = response.json()
    assert body == {
        "error": "Internal server error",
        "code": "internal_error",
        "status": 500,
        "request_id": "req-abc-123",
    }
    assert "hunter2" not in response.content.decode()
    assert any("hunter2" in str(record.exc_info) for record in caplog.records)


def test_every_response_carries_a_request_id(client_for: Callable[..., SlopClient], alice: Tenant) -> None:
    response = client_for(alice).get("/info")
    assert response["X-Request-ID"].startswith("req_")
