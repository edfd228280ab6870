"""Issue 12: IPv4 hosts in spellings other than a.b.c.d, and outbound failures that were 500s.

`010.8.8.8` is 8.8.8.8 to getaddrinfo (octal) but an invalid URL to httpx; `127.1` and `2130706433`
are 127.0.0.1 to getaddrinfo. Software disagrees about these hosts, so they are refused when a
tool is registered and again when a stored one is called (a row written before the check, or
straight into the database): always a 502 naming the reason, never a 500, no connection made."""

from __future__ import annotations

from typing import Any

import pytest

from apps.tools.models import Tool
from tests.tools.webhook_server import WebhookServer

pytestmark = pytest.mark.django_db
SECRET = "whsec_test-secret-0123456789"
SPELLINGS = ["010.8.8.8", "0177.0.0.1", "0x7f.1", "127.1", "2130706433", "0x7f000001", "127.0.0.1."]


@pytest.mark.parametrize("host", SPELLINGS)
def test_a_non_canonical_ipv4_host_is_refused_at_registration(alice, alice_client, host: str) -> None:
    response = alice_client.put("/tools/weather", {"url": f"http://{host}:8080/hook"}, format="json")

    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "validation_error"
    assert "canonical IPv4" in body["details"]["url"][0]
    assert not Tool.objects.for_tenant(alice).filter(slug="weather").exists()


def test_canonical_addresses_and_names_are_still_accepted(
    alice_client, webhook_server: WebhookServer
) -> None:
    port = webhook_server.httpd.server_address[1]
    for url in (f"http://127.0.0.1:{port}/echo", f"http://localhost:{port}/echo"):
        response = alice_client.put("/tools/weather", {"url": url, "signing_secret": SECRET}, format="json")
        assert response.status_code in (200, 201), response.json()


def _stored_with_host(client: Any, alice: Any, server: WebhookServer, host: str) -> None:
    server.secret = SECRET
    registered = client.put(
        "/tools/weather", {"url": f"{server.url}/echo", "signing_secret": SECRET}, format="json"
    )
    assert registered.status_code == 201
    port = server.httpd.server_address[1]
    Tool.objects.for_tenant(alice).filter(slug="weather").update(webhook_url=f"http://{host}:{port}/echo")


@pytest.mark.parametrize("host", ["0177.0.0.1", "010.8.8.8", "127.1", "2130706433", "0x7f.1"])
def test_a_stored_non_canonical_host_is_a_502_with_no_connection(
    alice, alice_client, webhook_server: WebhookServer, host: str
) -> None:
    _stored_with_host(alice_client, alice, webhook_server, host)

    response = alice_client.post("/tools/weather", {"location": "x"}, format="json")

    assert response.status_code == 502, response.content
    body = response.json()
    assert body["status"] == 502 and host in body["error"]
    assert body["code"] in ("destination_refused", "invalid_webhook_url")
    assert webhook_server.connections == 0
