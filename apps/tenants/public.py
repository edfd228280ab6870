"""A tenant's public surface: key-less requests under /t/<slug>/ act with the tenant's public scopes.

The SLOP reference clients and validators send no credentials. A tenant that sets `public_scopes`
serves them at `/t/<slug>/…` (every SLOP path below it): such a request acts as if it carried a
key with exactly those scopes, narrowed by X-SLOP-Scope, rate-limited per client address. A slug
that is unknown, inactive or has no public scopes is a 401, the same answer for each, so slugs
cannot be probed.

The pay rule: `*` among public scopes covers the seed's areas except pay (chat, tools, memory,
resources); pay, and every other area, is granted only by a scope that names it (`pay.read`,
`pay.*`). Spending a tenant's money must never follow from a wildcard.

Under `make run` (SLOP_DEMO_PUBLIC_LOOPBACK) a key-less request from loopback at the root path acts
on the demo tenant's public surface, so the reference clients work against http://127.0.0.1:8000.
Loopback is the socket peer (or what a trusted proxy reports), never a header the client wrote.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from apps.core.client_address import client_address, is_loopback, request_client_address
from apps.core.errors import ApplicationError
from apps.core.public_path import split_public_path
from apps.tenants.authentication import (
    SCOPE_HEADER,
    Principal,
    attach,
    requested_scopes,
    unauthenticated,
)
from apps.tenants.models import Tenant
from apps.tenants.scopes import AREAS, EffectiveScopes, Scope, ScopeSet, parse_scopes

WILDCARD_AREAS = ("chat", "tools", "memory", "resources")  # what `*` covers; never pay


def public_grant(public_scopes: list[str]) -> ScopeSet:
    """The scopes a public caller is granted: `*` becomes the wildcard areas, never pay."""
    granted: list[Scope] = []
    for scope in parse_scopes(public_scopes).scopes if public_scopes else ():
        if scope.area == "*":
            granted.extend(Scope(area=area, permission="*") for area in WILDCARD_AREAS if area in AREAS)
        else:
            granted.append(scope)
    return ScopeSet(tuple(granted))


_tenants: dict[str, tuple[float, Tenant | None]] = {}
_tenants_lock = threading.Lock()


def clear_public_cache() -> None:
    with _tenants_lock:
        _tenants.clear()


def _tenant(slug: str) -> Tenant | None:
    # Trusted for API_KEY_CACHE_SECONDS like a key, so a busy public surface costs no query per
    # request and switching it off reaches every process within that time.
    ttl = settings.API_KEY_CACHE_SECONDS
    now = time.monotonic()
    with _tenants_lock:
        cached = _tenants.get(slug)
    if cached is not None and now - cached[0] < ttl:
        return cached[1]
    tenant = Tenant.objects.filter(slug=slug, is_active=True).first()
    if ttl > 0:
        with _tenants_lock:
            if len(_tenants) > 10_000:  # unknown slugs are cached too; keep that bounded
                _tenants.clear()
            _tenants[slug] = (now, tenant)
    return tenant


def _principal(tenant: Tenant, scope_header: str | None) -> Principal:
    return Principal(
        tenant=tenant,
        key_id=None,
        key_prefix="",
        scopes=EffectiveScopes(
            granted=public_grant(tenant.public_scopes), requested=requested_scopes(scope_header)
        ),
    )


def public_principal_for(
    *, tenant_slug: str | None, client: str, scope_header: str | None
) -> Principal | None:
    """The public caller of a key-less request; None when there is no public surface to act on
    (the caller is then anonymous); a 401 when the URL names a tenant without one."""
    if tenant_slug is not None:
        tenant = _tenant(tenant_slug)
        if tenant is None or not tenant.public_scopes:
            raise unauthenticated(
                f"No public surface at /t/{tenant_slug}/: send 'Authorization: Bearer <api key>'"
            )
        return _principal(tenant, scope_header)
    if settings.SLOP_DEMO_PUBLIC_LOOPBACK and is_loopback(client):
        tenant = _tenant(settings.SLOP_DEMO_TENANT_SLUG)
        if tenant is not None and tenant.public_scopes:
            return _principal(tenant, scope_header)
    return None


class PublicSurfaceAuthentication(BaseAuthentication):
    """DRF, after the key and ticket classes: a request that sent neither acts publicly."""

    def authenticate(self, request: Request) -> tuple[Principal, Principal] | None:
        principal = public_principal_for(
            tenant_slug=getattr(request._request, "public_tenant_slug", None),
            client=request_client_address(request.META),
            scope_header=request._request.headers.get(SCOPE_HEADER),
        )
        return attach(request, principal) if principal is not None else None

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="slop"'


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


class PublicSurfaceASGIMiddleware:
    """Channels (WebSocket): /t/<slug>/chat/ws routes as /chat/ws with scope["public_tenant_slug"];
    sets scope["public_principal"] (or scope["public_error"]) for a consumer to use when the
    handshake carried neither a key nor a ticket. Wraps ApiKeyAuthMiddleware."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        scope = dict(scope)
        slug: str | None = None
        root_path, path = scope.get("root_path", ""), scope.get("path", "")
        split = split_public_path(path[len(root_path) :] if path.startswith(root_path) else path)
        if split is not None:
            # The URLRouter routes the path below root_path: the prefix moves there.
            slug = split[0]
            scope["public_tenant_slug"] = slug
            scope["root_path"] = f"{root_path}/t/{slug}"
        peer = scope.get("client") or ("", 0)
        scope["public_principal"] = None
        scope["public_error"] = None
        try:
            scope["public_principal"] = await database_sync_to_async(public_principal_for)(
                tenant_slug=slug,
                client=client_address(str(peer[0]), _header(scope, b"x-forwarded-for")),
                scope_header=_header(scope, b"x-slop-scope"),
            )
        except ApplicationError as error:
            scope["public_error"] = error
        return await self.inner(scope, receive, send)
