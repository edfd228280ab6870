"""Plan caps on what a team keeps (not what it uses up each month): memory items, resource storage,
API keys and members. `ensure_room(tenant, what, adding)` is called where each thing is created,
inside the transaction that creates it, and refuses with `402 quota_exceeded` (the shape of the
token quota's, apps/billing/quotas.py) when the addition would take the team past its plan.

Only additions are refused: data over a cap that was lowered stays, and may still be read,
overwritten in place, shrunk or deleted. A plan whose cap is null never refuses (no lock, no count).

Under concurrency: before counting, `ensure_room` takes a transaction-scoped advisory lock on
(tenant, what) — a row lock without a row, so memory writes do not queue behind a checkout that
holds the billing account's row while Stripe answers. Two creates at the edge are admitted one
after the other, and the second counts (in its own statement, so it sees what the first
committed) the row the first added. The lock lasts until the caller's transaction ends, which is
why the caller must call this inside the `transaction.atomic()` that adds the thing; outside one
the check still runs, but concurrent additions may both pass it.

What counts is asked of the app that keeps it (billing sits below memory and resources): each
registers a counter with `register_counter` from its AppConfig.ready(). API keys (active ones:
neither revoked nor expired) and members are counted here, since tenants sits below billing; the
API-key check reaches `apps.tenants.services.api_key_create` through its create-check hook.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from apps.billing.accounts import account_for
from apps.core.errors import ApplicationError
from apps.tenants.models import ApiKey, Membership, Tenant


@dataclass(frozen=True)
class Cap:
    plan_field: str  # the Plan column holding the cap (null: unlimited)
    noun: str  # "memory items", for messages
    verb: str  # what the team does with it: "keeps", "stores"
    remedy: str  # what frees room besides upgrading


CAPS: dict[str, Cap] = {
    "memory_items": Cap("included_memory_items", "memory items", "keeps", "delete some memory keys"),
    "resource_bytes": Cap(
        "included_resource_bytes", "bytes of resource content", "stores", "delete or shorten resources"
    ),
    "api_keys": Cap("included_api_keys", "active API keys", "has", "revoke a key"),
    "members": Cap("included_members", "members", "has", "remove a member"),
}

# tenant id -> how much of the thing it has now
Counter = Callable[[int], int]
_counters: dict[str, Counter] = {}


def register_counter(what: str, counter: Counter) -> None:
    """An app above billing says how to count what it keeps (from its AppConfig.ready())."""
    if what not in CAPS:
        raise ValueError(f"No plan cap named {what!r}; caps: {', '.join(CAPS)}")
    _counters[what] = counter


def _count_api_keys(tenant_id: int) -> int:
    live = Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    return ApiKey.objects.for_tenant(tenant_id).filter(live, revoked_at__isnull=True).count()


def _count_members(tenant_id: int) -> int:
    return Membership.objects.for_tenant(tenant_id).count()


register_counter("api_keys", _count_api_keys)
register_counter("members", _count_members)


def cap_usage(tenant: Tenant | int, what: str) -> int | None:
    """How much of `what` the tenant has now (None: no app counts it in this installation)."""
    counter = _counters.get(what)
    tenant_id = tenant if isinstance(tenant, int) else int(tenant.pk)
    return counter(tenant_id) if counter is not None else None


def cap_exceeded(*, what: str, limit: int, used: int, adding: int, plan: str) -> ApplicationError:
    cap = CAPS[what]
    extra: dict[str, object] = {
        "limit": limit,
        "used": used,
        "adding": adding,
        "scope": "tenant",
        "unit": what,
    }
    if settings.SLOP_BILLING_UPGRADE_URL:
        extra["upgrade_url"] = settings.SLOP_BILLING_UPGRADE_URL
        where = f"upgrade at {settings.SLOP_BILLING_UPGRADE_URL}"
    else:
        where = "upgrade the plan"
    adds = f"; this would add {adding:,}" if adding != 1 else ""
    return ApplicationError(
        f"Quota exceeded: this team {cap.verb} {used:,} of the {limit:,} {cap.noun} its {plan!r} plan "
        f"includes{adds}. Nothing was added: {cap.remedy}, or {where}",
        code="quota_exceeded",
        status=402,
        extra=extra,
    )


_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"


def ensure_room(tenant: Tenant | int, what: str, adding: int = 1) -> None:
    """Refuses (402 quota_exceeded) adding `adding` of `what` (memory_items, resource_bytes,
    api_keys, members) when the tenant's plan caps it and the addition would go past the cap.

    Call it inside the transaction that adds the thing, just before adding it: it serializes the
    tenant's concurrent additions of `what` until that transaction ends (see the module's doc).
    `adding` of 0 or less (an overwrite, a shrinking update) is always allowed."""
    cap = CAPS.get(what)
    if cap is None:
        raise ValueError(f"No plan cap named {what!r}; caps: {', '.join(CAPS)}")
    if adding <= 0:
        return
    tenant_id = tenant if isinstance(tenant, int) else int(tenant.pk)
    # Read fresh (not the per-process quota cache): a lowered cap holds from the next addition.
    plan = account_for(tenant_id).effective_plan
    limit = getattr(plan, cap.plan_field)
    if limit is None:
        return
    counter = _counters.get(what)
    if counter is None:
        raise RuntimeError(f"No counter registered for the {what} cap (its app's ready() registers it)")
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_SQL, [f"slop.billing.cap:{what}:{tenant_id}"])
    used = counter(tenant_id)
    if used + adding > limit:
        raise cap_exceeded(what=what, limit=int(limit), used=used, adding=adding, plan=plan.slug)


def ensure_api_key_room(tenant: Tenant) -> None:
    """The check apps.tenants.services.api_key_create runs for every new key (its hook)."""
    ensure_room(tenant, "api_keys")
