"""GET /info, anonymous and with a key."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

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
