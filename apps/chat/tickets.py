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

The team console (apps/dashboard) asks for a *member ticket* (`member_ticket_create`): it carries
the tenant and the signed-in user's id instead of a key, so the page never holds a key. At use the
membership is read fresh and the role's scopes are taken now (apps/tenants/roles.console_principal):
a removed member's tickets stop at once, and a lowered role narrows them at once.
"""

from __future__ import annotations

from dataclasses import replace
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
from apps.tenants.models import Membership
from apps.tenants.roles import console_principal
from apps.tenants.scopes import EffectiveScopes, ScopeError, ScopeSet, parse_scopes

PREFIX = "tkt_"
_SALT = "slop.chat.ticket"
_MAX_LENGTH = 2000  # the signed payload holds the narrowed scopes (at most 100 of 600 characters)


def _signed(payload: dict[str, Any]) -> dict[str, Any]:
    ticket = PREFIX + signing.dumps(payload, salt=_SALT, compress=True)
    return {"ticket": ticket, "expires_in": settings.SLOP_CHAT_TICKET_SECONDS}


def ticket_create(*, principal: Principal) -> dict[str, Any]:
    if principal.user_id is not None:
        raise ApplicationError(
            "A member of the console gets a member ticket from the console",
            code="invalid_request",
            status=400,
        )
    if principal.key_id is None:
        raise ApplicationError(
            "The public surface needs no ticket: open the stream without one",
            code="invalid_request",
            status=400,
        )
    requested = principal.scopes.requested
    return _signed(
        {
            "t": principal.tenant.pk,
            "k": principal.key_id,
            "s": requested.strings() if requested is not None else None,
        }
    )


def member_ticket_create(*, membership: Membership, narrowed_to: ScopeSet | None = None) -> dict[str, Any]:
    """A ticket for a member signed in to the console: the team and the user, optionally narrowed
    further (never widened: at use the role's scopes of that moment still bound it)."""
    return _signed(
        {
            "t": membership.tenant_id,
            "u": membership.user_id,
            "s": narrowed_to.strings() if narrowed_to is not None else None,
        }
    )


def _payload(ticket: str) -> dict[str, Any]:
    if not ticket.startswith(PREFIX) or len(ticket) > _MAX_LENGTH:
        raise unauthenticated("Invalid ticket")
    try:
        payload = signing.loads(ticket[len(PREFIX) :], salt=_SALT, max_age=settings.SLOP_CHAT_TICKET_SECONDS)
    except signing.SignatureExpired:
        raise unauthenticated("Ticket expired; ask POST /chat/tickets for a new one") from None
    except signing.BadSignature:
        raise unauthenticated("Invalid ticket") from None
    holders = [name for name in ("k", "u") if name in payload] if isinstance(payload, dict) else []
    if not (
        isinstance(payload, dict)
        and isinstance(payload.get("t"), int)
        and len(holders) == 1  # a key's ticket or a member's, never both
        and isinstance(payload[holders[0]], int)
        and (payload.get("s") is None or isinstance(payload.get("s"), list))
    ):
        raise unauthenticated("Invalid ticket")
    return payload


def _member_principal(tenant_id: int, user_id: int, requested: ScopeSet | None) -> Principal:
    """The member's principal as of now: still in the team, the role they have now."""
    membership = (
        Membership.objects.for_tenant(tenant_id)
        .select_related("tenant", "user")
        .filter(user_id=user_id)
        .first()
    )
    if membership is None:
        raise unauthenticated("The member behind this ticket is no longer in the team")
    if not membership.user.is_active or not membership.tenant.is_active:
        raise unauthenticated("The member behind this ticket can no longer use the console")
    principal = console_principal(membership)
    return replace(principal, scopes=EffectiveScopes(granted=principal.scopes.granted, requested=requested))


def principal_for_ticket(ticket: str, *, path_tenant_slug: str | None = None) -> Principal:
    """The caller a ticket stands for, checked against its key (or membership) now: revoked keys,
    removed members and lowered roles take effect at once."""
    payload = _payload(ticket)
    try:
        # [] narrows to nothing (not "no narrowing"): a ticket is never wider than it was made.
        requested = parse_scopes(payload["s"]) if payload.get("s") is not None else None
    except ScopeError:
        raise unauthenticated("Invalid ticket") from None
    if "u" in payload:
        return check_path_tenant(_member_principal(payload["t"], payload["u"], requested), path_tenant_slug)
    try:
        record = authenticate_key_id(tenant_id=payload["t"], key_id=payload["k"])
    except ApplicationError:
        raise unauthenticated("The API key behind this ticket is no longer valid") from None
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
