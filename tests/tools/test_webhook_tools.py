"""Webhook tools against a real HTTP server: signed calls, answers, and every upstream failure."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.test import override_settings

from apps.tools.webhooks import signature, verify_signature
from tests.tools.webhook_server import WebhookServer

pytestmark = pytest.mark.django_db
SECRET = "whsec_test-secret-0123456789"


def register(client: Any, server: WebhookServer, path: str, tool_id: str = "weather", **extra: Any) -> None:
    server.secret = SECRET
    response = client.put(
        f"/tools/{tool_id}",
        {
            "url": f"{server.url}{path}",
            "signing_secret": SECRET,
            "parameters": {"location": {"type": "string"}},
            **extra,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()


def test_signed_call_and_result(alice_client, webhook_server: WebhookServer) -> None:
    register(alice_client, webhook_server, "/echo")
    response = alice_client.post(
        "/tools/weather",
        {"tool_id": "weather", "parameters": {"location": "Oslo"}, "call_id": "call_1"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {"result": {"echo": {"location": "Oslo"}}}
    [received] = webhook_server.received
    assert received.signature_valid
    assert received.json() == {"tool": "weather", "call_id": "call_1", "parameters": {"location": "Oslo"}}
    assert received.headers["X-SLOP-Tool"] == "weather"
    assert received.headers["Content-Type"] == "application/json"


def test_a_job_records_the_call_id_its_webhook_received(
    alice_client, webhook_server, django_capture_on_commit_callbacks
) -> None:
    register(alice_client, webhook_server, "/echo")
    with django_capture_on_commit_callbacks(execute=True):  # the job is sent once its row commits
        started = alice_client.post("/tools/weather?async=true", {"location": "Oslo"}, format="json")
    assert started.status_code == 202, started.json()
    job = alice_client.get(f"/tools/jobs/{started.json()['job_id']}").json()
    [received] = webhook_server.received
    assert job["status"] == "succeeded"
    assert job["call_id"] and job["call_id"] == received.json()["call_id"]
    assert received.headers["X-SLOP-Call-Id"] == job["call_id"]


def test_the_whole_answer_is_the_result_without_a_result_key(alice_client, webhook_server) -> None:
    register(alice_client, webhook_server, "/plain")
    assert alice_client.post("/tools/weather", {"location": "x"}, format="json").json() == {
        "result": {"temperature": 21, "unit": "C"}
    }


def test_a_wrong_secret_is_refused_by_the_receiver(alice_client, webhook_server) -> None:
    register(alice_client, webhook_server, "/echo")
    webhook_server.secret = "whsec_something-else-entirely"
    response = alice_client.post("/tools/weather", {"location": "x"}, format="json")
    assert response.status_code == 502
    assert "HTTP 401" in response.json()["error"]
    assert not webhook_server.received[0].signature_valid


def test_signature_scheme() -> None:
    body = b'{"a": 1}'
    header = signature(SECRET, 1_700_000_000, body)
    assert header.startswith("t=1700000000,v1=")
    assert verify_signature(SECRET, header, body, now=1_700_000_010)
    assert not verify_signature(SECRET, header, body + b" ", now=1_700_000_010)
    assert not verify_signature("other-secret", header, body, now=1_700_000_010)
    assert not verify_signature(SECRET, header, body, now=1_700_000_000 + 3600)  # a replay
    assert not verify_signature(SECRET, "garbage", body)


@pytest.mark.parametrize(
    ("path", "status", "code", "fragment"),
    [
        ("/fail", 502, "upstream_error", "HTTP 500: database on fire"),
        ("/text", 502, "upstream_error", "not JSON"),
        ("/redirect", 502, "upstream_error", "redirect (HTTP 302)"),
        ("/tool-error", 502, "upstream_error", "city not found"),
        ("/big", 502, "upstream_error", "larger than"),
        ("/big-chunked", 502, "upstream_error", "larger than"),
        ("/missing", 502, "upstream_error", "HTTP 404"),
    ],
)
def test_upstream_failures(
    alice_client, webhook_server, path: str, status: int, code: str, fragment: str
) -> None:
    register(alice_client, webhook_server, path)
    response = alice_client.post("/tools/weather", {"location": "x"}, format="json")
    assert response.status_code == status
    body = response.json()
    assert body["code"] == code
    assert fragment in body["error"]
    assert body["error"].startswith("Webhook tool weather failed: ")


def test_redirect_target_is_never_called(alice_client, webhook_server) -> None:
    register(alice_client, webhook_server, "/redirect")
    alice_client.post("/tools/weather", {"location": "x"}, format="json")
    assert [received.path for received in webhook_server.received] == ["/redirect"]


def test_timeout_is_504(alice_client, webhook_server) -> None:
    register(alice_client, webhook_server, "/slow", timeout_seconds=0.5)
    started = time.monotonic()
    response = alice_client.post("/tools/weather", {"location": "x"}, format="json")
    assert time.monotonic() - started < 2.5
    assert response.status_code == 504
    assert response.json()["code"] == "upstream_timeout"
    assert "0.5 seconds" in response.json()["error"]


def test_unreachable_is_502(alice_client, webhook_server) -> None:
    register(alice_client, webhook_server, "/echo")
    webhook_server.close()
    response = alice_client.post("/tools/weather", {"location": "x"}, format="json")
    assert response.status_code == 502
    assert response.json()["code"] == "upstream_error"


def test_ssrf_target_refused_with_no_connection(alice_client, webhook_server) -> None:
    # Registered while private addresses were allowed (or through a name that later moved)…
    register(alice_client, webhook_server, "/echo")
    with override_settings(OUTBOUND_HTTP_ALLOW_PRIVATE=False):
        response = alice_client.post("/tools/weather", {"location": "x"}, format="json")
    assert response.status_code == 502
    body = response.json()
    assert body["code"] == "destination_refused"
    assert "loopback" in body["error"]
    assert webhook_server.connections == 0


@override_settings(OUTBOUND_HTTP_ALLOW_PRIVATE=False)
def test_ssrf_names_that_resolve_inside_are_refused(alice_client, webhook_server) -> None:
    port = webhook_server.httpd.server_address[1]
    for host in ("localhost", "127.0.0.1", "[::1]"):
        refused = alice_client.put("/tools/other", {"url": f"http://{host}:{port}/echo"}, format="json")
        assert refused.status_code == 400
        assert "loopback" in json.dumps(refused.json()["details"]["url"])
    assert webhook_server.connections == 0


def test_a_secret_the_keys_cannot_open_is_a_clear_error_until_rotated(alice_client, webhook_server) -> None:
    with override_settings(ENCRYPTION_KEYS=["first-key"]):
        register(alice_client, webhook_server, "/echo")
    with override_settings(ENCRYPTION_KEYS=["some-other-key"]):
        broken = alice_client.post("/tools/weather", {"location": "x"}, format="json")
        assert broken.status_code == 503
        assert broken.json()["code"] == "tool_not_configured"
        assert "rotate_secret" in broken.json()["error"]
        assert webhook_server.connections == 0
        rotated = alice_client.put(
            "/tools/weather", {"url": f"{webhook_server.url}/echo", "rotate_secret": True}, format="json"
        )
        assert rotated.status_code == 200
        webhook_server.secret = rotated.json()["signing_secret"]
        assert alice_client.post("/tools/weather", {"location": "x"}, format="json").status_code == 200
