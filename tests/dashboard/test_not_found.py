"""A 404 under the console is the console's own page (its header, its style, a way back), whether
the route is unknown or a view found nothing, with DEBUG on as off; every SLOP path still answers
the PROTOCOL.md JSON."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from django.test import Client, override_settings

from apps.tenants.models import Tenant
from tests.conftest import SlopClient

pytestmark = pytest.mark.django_db


def assert_console_404(response: object, reason: bytes = b"Nothing is at this address.") -> str:
    assert response.status_code == 404  # type: ignore[attr-defined]
    assert response["Content-Type"].startswith("text/html")  # type: ignore[index]
    body = response.content  # type: ignore[attr-defined]
    assert b"There is no such page" in body and reason in body
    assert b"Back to the console" in body and b'href="/console/"' in body
    assert b'<link rel="stylesheet"' in body  # the console's style, not a bare page
    return body.decode()


def test_an_unknown_console_route_is_the_console_404_page(
    console_for: Callable[..., Client], alice: Tenant
) -> None:
    assert_console_404(Client().get("/console/no/such/page"))  # signed out too
    assert_console_404(console_for(alice, "owner").get(f"/console/t/{alice.slug}/nothing-here"))


@override_settings(DEBUG=True)
def test_with_debug_on_the_console_404_is_still_its_page_not_djangos_url_list(
    console_for: Callable[..., Client], alice: Tenant
) -> None:
    body = assert_console_404(console_for(alice, "owner").get("/console/no/such/page"))
    assert "Using the URLconf" not in body and "dashboard:" not in body


def test_what_a_view_does_not_find_is_the_404_page_with_its_reason(
    console_for: Callable[..., Client], alice: Tenant, charlie: Tenant
) -> None:
    owner = console_for(alice, "owner")
    assert_console_404(owner.get(f"/console/t/{alice.slug}/members/999999/remove"), b"No such member")
    # Another team's pages are not found, not forbidden: nothing says the team exists.
    assert_console_404(owner.get(f"/console/t/{charlie.slug}/"), b"No such team")
    with override_settings(DEBUG=True):
        assert_console_404(owner.get(f"/console/t/{alice.slug}/members/999999/remove"), b"No such member")


@pytest.mark.parametrize("path", ["/no/such/route", "/memory/missing-key"])
@pytest.mark.parametrize("debug", [False, True])
def test_slop_paths_still_answer_json_404s(alice_client: SlopClient, debug: bool, path: str) -> None:
    with override_settings(DEBUG=debug):
        response = alice_client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert body["code"] == "not_found" and body["status"] == 404
