"""Short-lived tickets for browsers, which cannot set headers on EventSource or WebSocket.

A client holding an API key asks `POST /chat/tickets` for a ticket and puts only the ticket in the
URL (`GET /chat/stream?ticket=…`, `/chat/ws?ticket=…`); the long-lived key never goes in a URL. A
ticket acts for the key that made it, narrowed by the X-SLOP-Scope of that request, and lapses after
SLOP_CHAT_TICKET_SECONDS. It stays usable until then, so EventSource's automatic reconnects (with
Last-Event-ID) work. Stored in the cache: Redis when REDIS_URL is set, so any process accepts it.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from apps.tenants.authentication import Principal, unauthenticated
from apps.tenants.models import ApiKey
from apps.tenants.scopes import EffectiveScopes, ScopeSet, parse_scopes


def _cache_key(ticket: str) -> str:
    return f"slop:chat:ticket:{ticket}"


def ticket_create(*, principal: Principal) -> dict[str, Any]:
    ticket = "tkt_" + secrets.token_urlsafe(24)
    requested = principal.scopes.requested
    cache.set(
        _cache_key(ticket),
        {
            "key_id": principal.key_id,
            "tenant_id": principal.tenant.pk,
            "requested": requested.strings() if requested is not None else None,
        },
        timeout=settings.SLOP_CHAT_TICKET_SECONDS,
    )
    return {"ticket": ticket, "expires_in": settings.SLOP_CHAT_TICKET_SECONDS}


def principal_for_ticket(ticket: str) -> Principal:
    """The caller a ticket stands for, checked against its key now (revoked keys stop at once)."""
    if not ticket.startswith("tkt_") or len(ticket) > 100:
        raise unauthenticated("Invalid ticket")
    stored = cache.get(_cache_key(ticket))
    if stored is None:
        raise unauthenticated("Ticket expired or unknown; ask POST /chat/tickets for a new one")
    row = ApiKey.objects.unscoped().select_related("tenant").filter(pk=stored["key_id"]).first()
    if (
        row is None
        or row.tenant_id != stored["tenant_id"]
        or row.revoked_at is not None
        or not row.tenant.is_active
        or (row.expires_at is not None and row.expires_at <= timezone.now())
    ):
        raise unauthenticated("The API key behind this ticket is no longer valid")
    requested = stored["requested"]
    return Principal(
        tenant=row.tenant,
        key_id=row.pk,
        key_prefix=row.prefix,
        scopes=EffectiveScopes(
            granted=parse_scopes(row.scopes) if row.scopes else ScopeSet(()),
            requested=parse_scopes(requested) if requested else None,
        ),
    )


class TicketAuthentication(BaseAuthentication):
    """DRF: `?ticket=` when no key header was sent (browser EventSource)."""

    def authenticate(self, request: Request) -> tuple[Principal, Principal] | None:
        ticket = request.query_params.get("ticket")
        if not ticket:
            return None
        principal = principal_for_ticket(ticket)
        request._request.tenant = principal.tenant  # type: ignore[attr-defined]
        request._request.principal = principal  # type: ignore[attr-defined]
        return principal, principal

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="slop"'
