"""Who is calling: API-key authentication for DRF and Channels (one code path). What the caller
may do is decided in apps/tenants/access.py.

A busy key costs no query per request: a process keeps each key it has looked up. A change to a
key or its tenant (revoked, deactivated, new scopes) is dropped from the cache of the process that
saved it at once, and from every web process's within milliseconds of its commit through
apps.core.invalidation (PostgreSQL NOTIFY). While a process hears those, it trusts an entry for
API_KEY_CACHE_LISTENING_SECONDS (5 minutes); when it does not (not a web process, or its listening
connection is down) for API_KEY_CACHE_SECONDS (5 s), the longest a change may then take to reach it.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.core import invalidation
from apps.core.errors import ApplicationError
from apps.tenants.keys import hash_key, key_matches, parse_key
from apps.tenants.models import ApiKey, Tenant
from apps.tenants.scopes import EffectiveScopes, ScopeError, ScopeSet, parse_scopes

SCOPE_HEADER = "X-SLOP-Scope"
END_USER_HEADER = "X-SLOP-User"
END_USER_MAX_LENGTH = 200
_END_USER = re.compile(rf"[^\x00-\x1f\x7f]{{1,{END_USER_MAX_LENGTH}}}")


@dataclass(frozen=True)
class KeyRecord:
    key_id: int
    prefix: str
    key_hash: str
    tenant: Tenant
    granted: ScopeSet
    expires_at: datetime | None
    revoked: bool
    fetched_at: float
    monthly_token_cap: int | None = None


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: a tenant, the key used and the scopes in force for this request.

    A key-less caller of a tenant's public surface (apps/tenants/public.py) has no key: key_id is
    None and the granted scopes are the tenant's public scopes. `end_user` is the team's own user
    id the request names in X-SLOP-User ("" when it names none): usage and quotas are kept per end
    user too. `key_monthly_token_cap` is the key's own cap (None: none). A member of the team using
    the console has no key either, but a `user_id`."""

    tenant: Tenant
    key_id: int | None
    key_prefix: str
    scopes: EffectiveScopes
    is_authenticated: bool = field(default=True)
    end_user: str = ""
    key_monthly_token_cap: int | None = None
    # A member using the team console (apps/dashboard): no key, the role's scopes.
    user_id: int | None = None

    @property
    def is_public(self) -> bool:
        return self.key_id is None and self.user_id is None


def unauthenticated(message: str) -> ApplicationError:
    return ApplicationError(message, code="unauthenticated", status=401)


_cache: dict[str, KeyRecord] = {}
_cache_lock = threading.Lock()
_last_touch: dict[int, float] = {}


def clear_key_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _forget_key(prefix: str | None) -> None:
    if prefix is None:
        clear_key_cache()
        return
    with _cache_lock:
        _cache.pop(prefix, None)


def _forget_tenant(tenant_id: str | None) -> None:
    if tenant_id is None:
        clear_key_cache()
        return
    with _cache_lock:
        for prefix in [p for p, record in _cache.items() if str(record.tenant.pk) == tenant_id]:
            del _cache[prefix]


invalidation.register("api_key", _forget_key)
invalidation.register("api_key_tenant", _forget_tenant)


def forget_keys(*, prefixes: Sequence[str] = (), tenant_id: int | None = None) -> None:
    """Every process drops these keys (or all of a tenant's) when the transaction commits; called by
    the signals below, and by code that changes keys without them (QuerySet.update: the admin's
    revoke action)."""
    for prefix in prefixes:
        invalidation.invalidate("api_key", prefix)
    if tenant_id is not None:
        invalidation.invalidate("api_key_tenant", str(tenant_id))


@receiver([post_save, post_delete], sender=ApiKey, dispatch_uid="tenants.forget_api_key")
def _api_key_changed(instance: ApiKey, update_fields: Any = None, **kwargs: Any) -> None:
    if update_fields is not None and set(update_fields) <= {"last_used_at"}:
        return
    forget_keys(prefixes=[instance.prefix])


@receiver([post_save, post_delete], sender=Tenant, dispatch_uid="tenants.forget_tenant_keys")
def _tenant_changed(instance: Tenant, created: bool = False, **kwargs: Any) -> None:
    if not created:
        forget_keys(tenant_id=int(instance.pk))


def _load_record(prefix: str) -> KeyRecord | None:
    # The one place that looks a key up across tenants: the tenant is what the key tells us.
    row = ApiKey.objects.unscoped().select_related("tenant").filter(prefix=prefix).first()
    return _record_of(row) if row is not None else None


def _record_of(row: ApiKey) -> KeyRecord:
    return KeyRecord(
        key_id=row.pk,
        prefix=row.prefix,
        key_hash=row.key_hash,
        tenant=row.tenant,
        granted=parse_scopes(row.scopes) if row.scopes else ScopeSet(()),
        expires_at=row.expires_at,
        revoked=row.revoked_at is not None or not row.tenant.is_active,
        fetched_at=time.monotonic(),
        monthly_token_cap=row.monthly_token_cap,
    )


def _touch(record: KeyRecord) -> None:
    now = time.monotonic()
    if now - _last_touch.get(record.key_id, -1e9) < settings.API_KEY_TOUCH_SECONDS:
        return
    # Noted once written: a request that cannot write it here (one on the event loop, which has
    # no database connection: apps.tenants.loop) leaves it to the request that can.
    ApiKey.objects.unscoped().filter(pk=record.key_id).update(last_used_at=timezone.now())
    _last_touch[record.key_id] = now


def authenticate_key(raw_key: str) -> KeyRecord:
    """The key's record, or a 401 ApplicationError saying why not."""
    parsed = parse_key(raw_key)
    if parsed is None:
        raise unauthenticated("Invalid API key")
    ttl = (
        settings.API_KEY_CACHE_LISTENING_SECONDS
        if invalidation.listening()
        else settings.API_KEY_CACHE_SECONDS
    )
    with _cache_lock:
        record = _cache.get(parsed.prefix)
    if (
        record is None
        or time.monotonic() - record.fetched_at >= ttl
        or not key_matches(raw_key, record.key_hash)
    ):
        record = _load_record(parsed.prefix)
        if record is None:
            raise unauthenticated("Invalid API key")
        if ttl > 0:
            with _cache_lock:
                _cache[parsed.prefix] = record
    if not key_matches(raw_key, record.key_hash):
        raise unauthenticated("Invalid API key")
    _check_usable(record)
    return record


def _check_usable(record: KeyRecord) -> None:
    """Revoked, expired or of a deactivated tenant: a 401. Every credential passes here."""
    if record.revoked:
        raise unauthenticated("API key has been revoked")
    if record.expires_at is not None and record.expires_at <= timezone.now():
        raise unauthenticated("API key has expired")
    _touch(record)


def authenticate_key_id(*, tenant_id: int, key_id: int) -> KeyRecord:
    """The record of a key named by a credential that carries its tenant and id (a chat ticket),
    read fresh so a revocation stops it at once; the same checks as authenticate_key()."""
    row = ApiKey.objects.for_tenant(tenant_id).select_related("tenant").filter(pk=key_id).first()
    if row is None:
        raise unauthenticated("The API key behind this credential no longer exists")
    record = _record_of(row)
    _check_usable(record)
    return record


def principal_of(record: KeyRecord, requested: ScopeSet | None) -> Principal:
    return Principal(
        tenant=record.tenant,
        key_id=record.key_id,
        key_prefix=record.prefix,
        scopes=EffectiveScopes(granted=record.granted, requested=requested),
        key_monthly_token_cap=record.monthly_token_cap,
    )


def end_user_of(header: str | None) -> str:
    """The end user an X-SLOP-User header names ("" without one); a 400 for one that cannot be."""
    if header is None:
        return ""
    value = header.strip()
    if not _END_USER.fullmatch(value):
        raise ApplicationError(
            f"{END_USER_HEADER} must be the team's own user id: 1 to {END_USER_MAX_LENGTH} "
            "printable characters",
            code="invalid_request",
            status=400,
        )
    return value


def with_end_user(principal: Principal, header: str | None) -> Principal:
    end_user = end_user_of(header)
    return replace(principal, end_user=end_user) if end_user != principal.end_user else principal


def requested_scopes(header: str | None) -> ScopeSet | None:
    if header is None:
        return None
    try:
        return parse_scopes(header)
    except ScopeError as exc:
        raise ApplicationError(
            f"Malformed {SCOPE_HEADER} header: {exc}",
            code="invalid_scope",
            status=400,
            extra={"scope": exc.scope},
        ) from None


def key_from_headers(authorization: str | None, api_key: str | None) -> str | None:
    if authorization:
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise unauthenticated("Authorization header must be 'Bearer <api key>'")
        return credential.strip()
    if api_key:
        return api_key.strip()
    return None


def principal_for(
    authorization: str | None, api_key: str | None, scope_header: str | None
) -> Principal | None:
    """The caller of a request given its headers; None when it sent no key at all."""
    raw_key = key_from_headers(authorization, api_key)
    if raw_key is None:
        return None
    return principal_of(authenticate_key(raw_key), requested_scopes(scope_header))


def check_path_tenant(principal: Principal, path_tenant_slug: str | None) -> Principal:
    """A credential used under /t/<slug>/ must be one of that tenant's: the URL and the key would
    otherwise name two tenants, and the key's would silently win."""
    if path_tenant_slug is not None and principal.tenant.slug != path_tenant_slug:
        raise unauthenticated(f"This credential is not one of tenant {path_tenant_slug!r}'s")
    return principal


def attach(request: Request, principal: Principal) -> tuple[Principal, Principal]:
    """What every DRF authentication class returns: the principal (with the end user the request
    names), also on the Django request."""
    principal = attach_to(request._request, principal)
    return principal, principal


def attach_to(request: HttpRequest, principal: Principal) -> Principal:
    """The caller of a Django request: checked against a /t/<slug> prefix, with the end user the
    request names, kept on the request (`tenant`, `principal`)."""
    check_path_tenant(principal, getattr(request, "public_tenant_slug", None))
    principal = with_end_user(principal, request.headers.get(END_USER_HEADER))
    request.tenant = principal.tenant  # type: ignore[attr-defined]
    request.principal = principal  # type: ignore[attr-defined]
    return principal


class ApiKeyAuthentication(BaseAuthentication):
    """DRF: `Authorization: Bearer <key>` or `X-API-Key: <key>`."""

    def authenticate(self, request: Request) -> tuple[Principal, Principal] | None:
        headers = request._request.headers
        principal = principal_for(
            headers.get("Authorization"), headers.get("X-API-Key"), headers.get(SCOPE_HEADER)
        )
        if principal is None:
            return None
        return attach(request, principal)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="slop"'


class HasApiKey(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, Principal):
            return True
        raise unauthenticated("Missing API key: send 'Authorization: Bearer <api key>' or 'X-API-Key'")


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class ApiKeyAuthMiddleware(BaseMiddleware):
    """Channels: the same credentials on the WebSocket handshake. Sets scope["principal"] (or
    scope["auth_error"]) for the consumer to accept or refuse."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        scope = dict(scope)
        scope["principal"] = None
        scope["auth_error"] = None
        try:
            principal = await database_sync_to_async(principal_for)(
                _header(scope, b"authorization"),
                _header(scope, b"x-api-key"),
                _header(scope, b"x-slop-scope"),
            )
            if principal is not None:
                check_path_tenant(principal, scope.get("public_tenant_slug"))
            scope["principal"] = principal
        except ApplicationError as error:
            scope["auth_error"] = error
        return await super().__call__(scope, receive, send)


__all__ = [
    "END_USER_HEADER",
    "SCOPE_HEADER",
    "ApiKeyAuthMiddleware",
    "ApiKeyAuthentication",
    "HasApiKey",
    "Principal",
    "attach",
    "attach_to",
    "authenticate_key",
    "authenticate_key_id",
    "check_path_tenant",
    "clear_key_cache",
    "end_user_of",
    "hash_key",
    "key_from_headers",
    "principal_for",
    "with_end_user",
]
