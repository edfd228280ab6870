"""Chat tickets are signed, self-contained and checked like the key they stand for."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from apps.chat.tickets import principal_for_ticket
from apps.core.errors import ApplicationError
from apps.tenants.access import allows
from apps.tenants.models import ApiKey, Tenant
from apps.tenants.scopes import Action
from apps.tenants.services import tenant_public_scopes_set
from tests.conftest import SlopClient

pytestmark = pytest.mark.django_db


def _ticket(client: SlopClient) -> str:
    response = client.post("/chat/tickets")
    assert response.status_code == 201
    return str(response.json()["ticket"])


def test_a_ticket_carries_its_tenant_key_and_narrowed_scopes(
    client_for: Callable[..., SlopClient], alice: Tenant
) -> None:
    ticket = _ticket(client_for(alice, "*", "chat.read"))
    principal = principal_for_ticket(ticket)
    assert principal.tenant == alice and principal.key_id is not None
    assert allows(principal, Action(area="chat", permission="read"))
    assert not allows(principal, Action(area="chat", permission="write"))


def test_a_tampered_or_foreign_ticket_is_refused(
    client_for: Callable[..., SlopClient], alice: Tenant
) -> None:
    ticket = _ticket(client_for(alice, "chat.*"))
    for bad in (ticket[:-2] + ("AA" if not ticket.endswith("AA") else "BB"), "tkt_nope", "x" + ticket):
        with pytest.raises(ApplicationError) as refused:
            principal_for_ticket(bad)
        assert refused.value.status == 401


def test_a_ticket_lapses(
    client_for: Callable[..., SlopClient], alice: Tenant, monkeypatch: pytest.MonkeyPatch, settings: object
) -> None:
    ticket = _ticket(client_for(alice, "chat.*"))
    later = time.time() + settings.SLOP_CHAT_TICKET_SECONDS + 1  # type: ignore[attr-defined]
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)
    with pytest.raises(ApplicationError, match="expired"):
        principal_for_ticket(ticket)


def test_an_expired_key_stops_its_tickets(client_for: Callable[..., SlopClient], alice: Tenant) -> None:
    from django.utils import timezone

    ticket = _ticket(client_for(alice, "chat.*"))
    ApiKey.objects.for_tenant(alice).update(expires_at=timezone.now())
    with pytest.raises(ApplicationError, match="no longer valid"):
        principal_for_ticket(ticket)


def test_a_ticket_is_refused_under_another_tenants_prefix(
    client_for: Callable[..., SlopClient], alice: Tenant, charlie: Tenant
) -> None:
    tenant_public_scopes_set(tenant=charlie, scopes=["chat.*"])
    ticket = _ticket(client_for(alice, "chat.*"))
    response = APIClient().get(f"/t/{charlie.slug}/chat/stream", {"ticket": ticket, "content": "hi"})
    assert response.status_code == 401


def test_the_public_surface_needs_no_ticket(alice: Tenant) -> None:
    tenant_public_scopes_set(tenant=alice, scopes=["chat.*"])
    response = APIClient().post(f"/t/{alice.slug}/chat/tickets")
    assert response.status_code == 400 and "needs no ticket" in response.json()["error"]
