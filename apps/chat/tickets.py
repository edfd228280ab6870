"""Short-lived tickets for browsers, which cannot set headers on EventSource or WebSocket.

A client holding an API key asks `POST /chat/tickets` for a ticket and puts only the ticket in the
URL (`GET /chat/stream?ticket=…`, `/chat/ws?ticket=…`); the long-lived key never goes in a URL. A
ticket acts for the key that made it, narrowed by the X-SLOP-Scope of that request, and lapses after
SLOP_CHAT_TICKET_SECONDS. It stays usable until then, so EventSource's automatic reconnects (with
Last-Event-ID) work.

A ticket is self-contained: the tenant, the key id and the narrowed scopes, signed with SECRET_KEY
and timestamped (django.core.signing). Nothing is stored, so no cache can lose it and every process
accepts it; using it goes through the same key checks as a key itself (authenticate_key_id: the
key's tenant, revoked, expired, tenant deactivated), read fresh so a revoked key stops at once.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import signing
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from apps.core.errors import ApplicationError
from apps.tenants.authentication import (
    Principal,
    attach,
    authenticate_key_id,
    check_path_tenant,
    principal_of,
    unauthenticated,
)
from apps.tenants.scopes import ScopeError, parse_scopes

PREFIX = "tkt_"
_SALT = "slop.chat.ticket"
_MAX_LENGTH = 2000  # the signed payload holds the narrowed scopes (at most 100 of 600 characters)


def ticket_create(*, principal: Principal) -> dict[str, Any]:
    if principal.key_id is None:
        raise ApplicationError(
            "The public surface needs no ticket: open the stream without one",
            code="invalid_request",
            status=400,
        )
    requested = principal.scopes.requested
    payload = {
        "t": principal.tenant.pk,
        "k": principal.key_id,
        "s": requested.strings() if requested is not None else None,
    }
    ticket = PREFIX + signing.dumps(payload, salt=_SALT, compress=True)
    return {"ticket": ticket, "expires_in": settings.SLOP_CHAT_TICKET_SECONDS}


def _payload(ticket: str) -> dict[str, Any]:
    if not ticket.startswith(PREFIX) or len(ticket) > _MAX_LENGTH:
        raise unauthenticated("Invalid ticket")
    try:
        payload = signing.loads(ticket[len(PREFIX) :], salt=_SALT, max_age=settings.SLOP_CHAT_TICKET_SECONDS)
    except signing.SignatureExpired:
        raise unauthenticated("Ticket expired; ask POST /chat/tickets for a new one") from None
    except signing.BadSignature:
        raise unauthenticated("Invalid ticket") from None
    if not (
        isinstance(payload, dict)
        and isinstance(payload.get("t"), int)
        and isinstance(payload.get("k"), int)
        and (payload.get("s") is None or isinstance(payload.get("s"), list))
    ):
        raise unauthenticated("Invalid ticket")
    return payload


def principal_for_ticket(ticket: str, *, path_tenant_slug: str | None = None) -> Principal:
    """The caller a ticket stands for, checked against its key now (revoked keys stop at once)."""
    payload = _payload(ticket)
    try:
        record = authenticate_key_id(tenant_id=payload["t"], key_id=payload["k"])
    except ApplicationError:
        raise unauthenticated("The API key behind this ticket is no longer valid") from None
    try:
        requested = parse_scopes(payload["s"]) if payload["s"] else None
    except ScopeError:
        raise unauthenticated("Invalid ticket") from None
    return check_path_tenant(principal_of(record, requested), path_tenant_slug)


class TicketAuthentication(BaseAuthentication):
    """DRF: `?ticket=` when no key header was sent (browser EventSource)."""

    def authenticate(self, request: Request) -> tuple[Principal, Principal] | None:
        ticket = request.query_params.get("ticket")
        if not ticket:
            return None
        return attach(request, principal_for_ticket(ticket))

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="slop"'
