"""A base URL a tenant configures is reached only through the SSRF-guarded client."""

from __future__ import annotations

from typing import Any

import pytest

from apps.llm.services import model_config_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_tenant_model_pointing_at_the_metadata_service_is_refused(
    alice: Any, alice_client: Any, provider: str
) -> None:
    model_config_create(
        tenant=alice,
        name="sneaky",
        provider=provider,
        upstream_model="x",
        base_url="http://169.254.169.254/latest",
        api_key="k",
    )
    response = alice_client.post("/chat", {"messages": [{"content": "hi"}], "model": "sneaky"}, format="json")
    assert response.status_code == 502
    body = response.json()
    assert body["code"] != "internal_error"
    assert "169.254.169.254" in body["error"] or "refused" in body["error"].lower()


def test_loopback_is_refused_when_private_addresses_are_not_allowed(
    alice: Any, alice_client: Any, openai_upstream: Any, settings: Any
) -> None:
    settings.OUTBOUND_HTTP_ALLOW_PRIVATE = False
    model_config_create(
        tenant=alice,
        name="team-gpt",
        provider="openai",
        upstream_model="gpt-test",
        base_url=openai_upstream.url,
        api_key=openai_upstream.api_key,
    )
    response = alice_client.post(
        "/chat", {"messages": [{"content": "hi"}], "model": "team-gpt"}, format="json"
    )
    assert response.status_code == 502
    assert "127.0.0.1" in response.json()["error"]


def test_a_tenant_model_on_an_allowed_address_still_works(
    alice: Any, alice_client: Any, openai_upstream: Any
) -> None:
    model_config_create(
        tenant=alice,
        name="team-gpt",
        provider="openai",
        upstream_model="gpt-test",
        base_url=openai_upstream.url,
        api_key=openai_upstream.api_key,
    )
    response = alice_client.post(
        "/chat", {"messages": [{"content": "hi"}], "model": "team-gpt"}, format="json"
    )
    assert response.status_code == 200, response.json()
