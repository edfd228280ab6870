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


# --- Django's own answers are JSON too, with DEBUG on (make run) as with it off ------------------

both_modes = pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])


def _json_error(response, status: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    body = response.json()
    assert body["status"] == status and isinstance(body["error"], str) and body["code"]
    return body


@both_modes
def test_unknown_route_and_wrong_method_are_json(debug: bool) -> None:
    with override_settings(DEBUG=debug):
        body = _json_error(Client().get("/nope"), 404)
        assert body == {"error": "No endpoint at /nope", "code": "not_found", "status": 404}
        assert _json_error(Client().delete("/info"), 405)["code"] == "method_not_allowed"
        assert _json_error(Client().get("/memory/../../etc"), 401)["code"] == "unauthenticated"


def test_a_replaced_error_page_ends_the_request_once() -> None:
    """With DEBUG on, Django's HTML 404 is replaced by JSON; closing the replaced page sent
    request_finished (which gives the database connection back) before the request had ended."""
    from django.core.signals import request_finished

    ended: list[object] = []

    def count(sender: object, **kwargs: object) -> None:
        ended.append(sender)

    request_finished.connect(count)
    try:
        with override_settings(DEBUG=True):
            response = Client().get("/nope")
    finally:
        request_finished.disconnect(count)
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert len(ended) == 1


@both_modes
def test_a_host_the_server_refuses_is_a_json_400(debug: bool) -> None:
    with override_settings(DEBUG=debug, ALLOWED_HOSTS=["localhost"]):
        body = _json_error(Client(HTTP_HOST="evil.example").get("/info"), 400)
    assert body["code"] == "invalid_request" and "evil.example" in body["error"]


@both_modes
def test_a_crash_outside_any_view_is_a_json_500_without_a_trace(
    debug: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(path: str) -> int:
        raise RuntimeError("secret internals: password=hunter2")

    monkeypatch.setattr("apps.core.middleware.body_limit_for", explode)
    with override_settings(DEBUG=debug):
        response = Client(raise_request_exception=False).get("/info", HTTP_X_REQUEST_ID="req-crash-1")
    body = _json_error(response, 500)
    assert body == {
        "error": "Internal server error",
        "code": "internal_error",
        "status": 500,
        "request_id": "req-crash-1",
    }
    assert b"hunter2" not in response.content


@both_modes
def test_a_crash_in_a_view_is_a_json_500(debug: bool, alice_client: SlopClient) -> None:
    with override_settings(DEBUG=debug):
        response = alice_client.get("/_test/crash")
    assert _json_error(response, 500)["code"] == "internal_error"
    assert b"hunter2" not in response.content


def test_the_admin_and_the_docs_keep_their_pages() -> None:
    with override_settings(DEBUG=True):
        missing = Client().get("/admin/no/such/page")
        assert missing.status_code in (302, 404)
        assert not missing["Content-Type"].startswith("application/json")
        docs = Client().get("/docs")
        assert docs.status_code == 200 and docs["Content-Type"].startswith("text/html")
