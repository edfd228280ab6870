"""GET /info, anonymous and with a key."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client, override_settings

from apps.tenants.models import Tenant
from tests.conftest import SlopClient

pytestmark = pytest.mark.django_db


def test_anonymous_info_has_the_seed_shape() -> None:
    response = Client().get("/info")
    assert response.status_code == 200
    body = response.json()
    assert {"name", "version", "description", "endpoints", "capabilities", "creator", "links"} <= body.keys()
    assert {"path": "/info", "methods": ["GET"], "description": body["endpoints"][0]["description"]} in body[
        "endpoints"
    ]
    assert {"streaming", "websockets", "models"} <= body["capabilities"].keys()
    assert "tenant" not in body and "scopes" not in body


def test_endpoints_come_from_the_installed_routes() -> None:
    paths = {endpoint["path"] for endpoint in Client().get("/info").json()["endpoints"]}
    assert "/info" in paths
    assert "/healthz" not in paths and "/admin/" not in paths


def test_authenticated_info_shows_tenant_and_effective_scopes(
    client_for: Callable[..., SlopClient], alice: Tenant
) -> None:
    body = client_for(alice, "memory.*,chat.read", scope_header="memory.user.read").get("/info").json()
    assert body["tenant"] == {"slug": alice.slug, "name": alice.name}
    assert body["scopes"] == {"granted": ["memory.*", "chat.read"], "requested": ["memory.user.read"]}


def test_info_with_a_bad_key_is_401() -> None:
    response = Client().get("/info", HTTP_AUTHORIZATION="Bearer wrong")
    assert response.status_code == 401


def test_openapi_and_docs_are_served() -> None:
    schema = Client().get("/openapi.json")
    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "SLOP Platform"
    docs = Client().get("/docs")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


# --- capabilities say what is installed and configured, never more ---------------------------


def _capabilities(client: Client | SlopClient) -> dict[str, object]:
    return client.get("/info").json()["capabilities"]  # type: ignore[no-any-return]


def test_payments_is_true_only_where_a_charge_could_be_made(alice_client: SlopClient) -> None:
    with override_settings(STRIPE_SECRET_KEY=None):
        assert _capabilities(Client())["payments"] is False
        info = alice_client.get("/info").json()
        assert info["capabilities"]["payments"] is False and info["payments"] == {"configured": False}
    with override_settings(STRIPE_SECRET_KEY="sk_test_configured"):
        assert _capabilities(Client())["payments"] is True
        info = alice_client.get("/info").json()
        assert info["capabilities"]["payments"] is True and info["payments"] == {"configured": True}


def test_builtin_tools_are_the_ones_every_tenant_has(alice_client: SlopClient) -> None:
    from apps.tools.builtins import BUILTINS

    listed = [tool["id"] for tool in alice_client.get("/tools").json()["tools"] if tool["id"] in BUILTINS]
    builtin = _capabilities(Client())["tools"]["builtin"]  # type: ignore[index]
    assert builtin == sorted(BUILTINS) == sorted(listed)
    assert len(builtin) == 5


def test_models_are_the_platforms_and_with_a_key_the_tenants(alice: Tenant, alice_client: SlopClient) -> None:
    from apps.llm.services import model_config_create

    with override_settings(OPENAI_API_KEY=None, SLOP_OPENAI_BASE_URL=None, ANTHROPIC_API_KEY=None):
        assert _capabilities(Client())["models"] == ["echo"]
        model_config_create(tenant=alice, name="team-echo", provider="echo")
        info = alice_client.get("/info").json()
        assert info["capabilities"]["models"] == ["echo", "team-echo"]
        assert sorted(model["id"] for model in info["models"]) == ["echo", "team-echo"]
        assert _capabilities(Client())["models"] == ["echo"]  # another tenant's model is not shown
    with override_settings(OPENAI_API_KEY="sk-platform", SLOP_OPENAI_MODELS=["gpt-4o-mini"]):
        assert _capabilities(Client())["models"] == ["echo", "gpt-4o-mini"]


def test_semantic_search_needs_an_embedding_provider() -> None:
    assert _capabilities(Client())["semantic_search"] is True  # the bundled local model
    with override_settings(
        SLOP_EMBEDDINGS_PROVIDER="openai", SLOP_EMBEDDINGS_BASE_URL=None, SLOP_EMBEDDINGS_API_KEY=None
    ):
        assert _capabilities(Client())["semantic_search"] is False
    with override_settings(SLOP_EMBEDDINGS_PROVIDER="local", SLOP_EMBEDDINGS_MODEL_PATH="/nonexistent"):
        assert _capabilities(Client())["semantic_search"] is False
