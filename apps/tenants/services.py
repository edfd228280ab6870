"""Writes for tenants and API keys."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.core.errors import ApplicationError
from apps.tenants.keys import generate_key, hash_key
from apps.tenants.models import ApiKey, Tenant
from apps.tenants.scopes import ScopeError, parse_scopes


def tenant_create(*, name: str, slug: str | None = None) -> Tenant:
    name = name.strip()
    if not name:
        raise ApplicationError("A tenant needs a name", code="validation_error")
    base = slugify(slug or name)[:50] or "tenant"
    candidate = base
    suffix = 2
    while Tenant.objects.filter(slug=candidate).exists():
        if slug:
            raise ApplicationError(f"Tenant {slug!r} already exists", code="conflict", status=409)
        candidate = f"{base}-{suffix}"
        suffix += 1
    return Tenant.objects.create(name=name, slug=candidate)


def tenant_public_scopes_set(*, tenant: Tenant, scopes: str | list[str]) -> Tenant:
    """Turn a tenant's public surface (/t/<slug>/) on with these scopes, or off with none."""
    tenant.public_scopes = normalise_scopes(scopes) if scopes else []
    tenant.save(update_fields=["public_scopes"])
    return tenant


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    plaintext: str  # shown once, never stored


def normalise_scopes(scopes: str | list[str]) -> list[str]:
    try:
        return parse_scopes(scopes).strings()
    except ScopeError as exc:
        raise ApplicationError(str(exc), code="invalid_scope", extra={"scope": exc.scope}) from None


# Checks a new key must pass, run inside api_key_create's transaction just before the key is made
# (billing's plan cap on API keys registers one in its AppConfig.ready(): tenants sits below
# billing). A check refuses by raising ApplicationError (402 quota_exceeded for the cap).
ApiKeyCreateCheck = Callable[[Tenant], None]
_api_key_create_checks: list[ApiKeyCreateCheck] = []


def register_api_key_create_check(check: ApiKeyCreateCheck) -> None:
    if check not in _api_key_create_checks:
        _api_key_create_checks.append(check)


def api_key_create_check(*, tenant: Tenant) -> None:
    """Raises what api_key_create would refuse a new key of this tenant for (a form's early check;
    api_key_create checks again, holding the lock)."""
    for check in _api_key_create_checks:
        check(tenant)


@transaction.atomic
def api_key_create(
    *,
    tenant: Tenant,
    scopes: str | list[str],
    name: str = "default",
    expires_in_days: int | None = None,
    created_by_id: int | None = None,
    monthly_token_cap: int | None = None,
    expires_at: datetime | None = None,
) -> IssuedKey:
    """A new key; `expires_in_days` or `expires_at` (not both) ends it, neither: it never expires."""
    granted = normalise_scopes(scopes)
    if expires_in_days is not None and expires_in_days <= 0:
        raise ApplicationError("expires_in_days must be positive", code="validation_error")
    if expires_at is not None and expires_in_days is not None:
        raise ApplicationError("Give expires_in_days or expires_at, not both", code="validation_error")
    if expires_at is not None and expires_at <= timezone.now():
        raise ApplicationError("expires_at must be in the future", code="validation_error")
    if expires_in_days:
        expires_at = timezone.now() + timedelta(days=expires_in_days)
    if monthly_token_cap is not None and monthly_token_cap < 0:
        raise ApplicationError("monthly_token_cap must be 0 or more", code="validation_error")
    api_key_create_check(tenant=tenant)  # e.g. the plan's cap on API keys
    plaintext, prefix = generate_key(settings.API_KEY_ENV)
    api_key = ApiKey.objects.create(
        tenant=tenant,
        name=name.strip() or "default",
        prefix=prefix,
        key_hash=hash_key(plaintext),
        scopes=granted,
        created_by_id=created_by_id,
        expires_at=expires_at,
        monthly_token_cap=monthly_token_cap,
    )
    return IssuedKey(api_key=api_key, plaintext=plaintext)


def api_key_revoke(*, prefix: str) -> ApiKey:
    # Operators revoke by prefix, which is unique across tenants.
    api_key = ApiKey.objects.unscoped().filter(prefix=prefix).first()
    if api_key is None:
        raise ApplicationError(f"No API key with prefix {prefix!r}", code="not_found", status=404)
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key
