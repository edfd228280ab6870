"""Caps on what a team may hold at once (members, API keys), from its plan's `included_*` fields.

A local stand-in written by the console's access pages (dash-access) for the module billing-caps
writes; the two are reconciled at merge. Callers check before they create:
`ensure_room(tenant, "members")` raises a 402 `quota_exceeded` when the plan has no room left.
"""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from apps.billing.accounts import account_for
from apps.core.errors import ApplicationError
from apps.tenants.models import ApiKey, Membership, Tenant

_NOUNS = {"members": ("members", "remove a member"), "api_keys": ("active API keys", "revoke a key")}


def _used(tenant: Tenant, what: str) -> int:
    if what == "members":
        return int(Membership.objects.for_tenant(tenant).count())
    # A revoked or expired key can do nothing, so it takes no room.
    active = ApiKey.objects.for_tenant(tenant).filter(revoked_at=None)
    return int(active.filter(Q(expires_at=None) | Q(expires_at__gt=timezone.now())).count())


def ensure_room(tenant: Tenant, what: str, adding: int = 1) -> None:
    if what not in _NOUNS:
        raise ValueError(f"no cap on {what!r}")
    plan = account_for(tenant).effective_plan
    limit = plan.included_members if what == "members" else plan.included_api_keys
    if limit is None or adding <= 0:
        return
    used = _used(tenant, what)
    if used + adding > limit:
        noun, remedy = _NOUNS[what]
        raise ApplicationError(
            f"Quota exceeded: this team has {used:,} of the {limit:,} {noun} its {plan.slug!r} plan "
            f"includes. Nothing was added: {remedy}, or upgrade the plan",
            code="quota_exceeded",
            status=402,
            extra={"limit": limit, "used": used, "adding": adding, "scope": "tenant", "unit": what},
        )
