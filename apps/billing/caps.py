"""Plan caps on what a team keeps (not what it uses up each month): memory items, resource storage,
API keys and members. `ensure_room(tenant, what, adding)` is called where each thing is created,
inside the transaction that creates it, and refuses with `402 quota_exceeded` (the shape of the
token quota's, apps/billing/quotas.py) when the addition would take the team past its plan.

Only additions are refused: data over a cap that was lowered stays, and may still be read,
overwritten in place, shrunk or deleted. A plan whose cap is null never refuses (no lock, no count).

What a team has comes from one counter row per tenant and cap (CapCounter), which database
triggers on the counted tables move in the statement that adds or removes rows: every path (the
API, the console, the admin, tools, jobs, bulk deletes, a tenant's deletion) keeps it right, and a
check costs one indexed row whatever the team keeps (bench/caps.py). API keys: the counter holds
the keys not revoked; the check subtracts the expired ones (expiry is a clock, not a write).

Under concurrency: `ensure_room` locks the tenant's counter row (FOR UPDATE) before reading it,
and an addition's trigger updates that same row, so two creates at the edge are admitted one
after the other, the second reading the count the first committed. A deletion's trigger waits on
the row as well; one lock, so no order of locks to deadlock on. It is a row of its own, so memory
writes do not queue behind a checkout that holds the billing account's row while Stripe answers.
The lock lasts until the caller's transaction ends, which is why the caller must call this inside
the `transaction.atomic()` that adds the thing; outside one the check still runs, but concurrent
additions may both pass it.

Each app registers, with `register_counter` from its AppConfig.ready(), how to count what it keeps
from scratch (billing sits below memory and resources); `manage.py billing_check_caps` compares
the counters with those counts, a safety net against a counter edited by hand, and repairs them.
API keys and members are counted here, since tenants sits below billing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.billing.accounts import account_for
from apps.billing.models import CapCounter
from apps.core.errors import ApplicationError
from apps.tenants.models import ApiKey, Membership, Tenant
from apps.tenants.teams import pending_invitations


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
    # Each open invitation holds the seat it will take (apps/tenants/teams.py pending_invitations).
    "members": Cap(
        "included_members",
        "members (open invitations included)",
        "has",
        "remove a member or withdraw an invitation",
    ),
}

# tenant id -> what its counter row should hold, counted from the rows (for billing_check_caps)
Counter = Callable[[int], int]
_counters: dict[str, Counter] = {}


def register_counter(what: str, counter: Counter) -> None:
    """An app above billing says how to count what it keeps from scratch (from its AppConfig.ready())."""
    if what not in CAPS:
        raise ValueError(f"No plan cap named {what!r}; caps: {', '.join(CAPS)}")
    _counters[what] = counter


def _count_api_keys(tenant_id: int) -> int:
    return ApiKey.objects.for_tenant(tenant_id).filter(revoked_at__isnull=True).count()


def _expired_api_keys(tenant_id: int) -> int:
    """Keys not revoked whose time is up: counted by the counter, but no longer active."""
    return (
        ApiKey.objects.for_tenant(tenant_id)
        .filter(revoked_at__isnull=True, expires_at__lte=timezone.now())
        .count()
    )


def _count_members(tenant_id: int) -> int:
    return Membership.objects.for_tenant(tenant_id).count()


register_counter("api_keys", _count_api_keys)
register_counter("members", _count_members)


def _used(tenant_id: int, what: str, counted: int, *, invitations: bool = True) -> int:
    """What the cap holds against the plan, from the counter row's value: active keys only; the
    members and, unless `invitations` is false, the open invitations (a handful, counted)."""
    if what == "api_keys":
        return counted - _expired_api_keys(tenant_id)
    if what == "members" and invitations:
        return counted + pending_invitations(tenant_id)
    return counted


def cap_usage(tenant: Tenant | int, what: str) -> int | None:
    """How much of `what` the tenant has now (None: no app counts it in this installation)."""
    if what not in _counters:
        return None
    tenant_id = tenant if isinstance(tenant, int) else int(tenant.pk)
    counter = CapCounter.objects.for_tenant(tenant_id).filter(what=what)
    counted = counter.values_list("used", flat=True).first()
    return _used(tenant_id, what, int(counted or 0))


def _locked_count(tenant_id: int, what: str) -> int:
    """The counter row's value, locked until the caller's transaction ends (made at 0 first when
    the tenant has none yet: no row means none of the thing)."""
    locked = CapCounter.objects.for_tenant(tenant_id).select_for_update().filter(what=what)
    counted = locked.values_list("used", flat=True).first()
    if counted is None:
        CapCounter.objects.bulk_create([CapCounter(tenant_id=tenant_id, what=what)], ignore_conflicts=True)
        counted = locked.values_list("used", flat=True).get()
    return int(counted)


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


def ensure_room(tenant: Tenant | int, what: str, adding: int = 1) -> None:
    """Refuses (402 quota_exceeded) adding `adding` of `what` (memory_items, resource_bytes,
    api_keys, members) when the tenant's plan caps it and the addition would go past the cap.

    Call it inside the transaction that adds the thing, just before adding it: it serializes the
    tenant's concurrent additions of `what` until that transaction ends (see the module's doc).
    The addition's trigger then moves the counter this read: the caller adds nothing to it.
    `adding` of 0 or less (an overwrite, a shrinking update) is always allowed."""
    _ensure_room(tenant, what, adding, invitations=True)


def _ensure_room(tenant: Tenant | int, what: str, adding: int, *, invitations: bool) -> None:
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
    if what not in _counters:
        raise RuntimeError(f"No counter registered for the {what} cap (its app's ready() registers it)")
    used = _used(tenant_id, what, _locked_count(tenant_id, what), invitations=invitations)
    if used + adding > limit:
        raise cap_exceeded(what=what, limit=int(limit), used=used, adding=adding, plan=plan.slug)


def ensure_seat_for_invitation(tenant: Tenant | int) -> None:
    """Accepting an invitation (before `invitation_accept`, in its transaction): its seat has been
    counted since it was sent, so a team at its cap through open invitations may still accept
    them; only the members are counted against the plan here. A seat taken meanwhile (a cap lowered,
    a member added another way) still refuses it. Same lock as every other members check."""
    _ensure_room(tenant, "members", 1, invitations=False)


def ensure_api_key_room(tenant: Tenant) -> None:
    """The check apps.tenants.services.api_key_create runs for every new key (its hook)."""
    ensure_room(tenant, "api_keys")


def cap_counters_check(tenant: Tenant | int, *, repair: bool = False) -> dict[str, tuple[int, int]]:
    """The tenant's counters that differ from a count of its rows: {what: (counter, counted)}.
    `repair` sets them to the count. Each is checked with its row locked, so a concurrent addition
    (whose trigger waits on the row) lands on the repaired value rather than being lost."""
    tenant_id = tenant if isinstance(tenant, int) else int(tenant.pk)
    wrong: dict[str, tuple[int, int]] = {}
    for what, counter in _counters.items():
        with transaction.atomic():
            kept = _locked_count(tenant_id, what)
            counted = counter(tenant_id)
            if kept != counted:
                wrong[what] = (kept, counted)
                if repair:
                    CapCounter.objects.for_tenant(tenant_id).filter(what=what).update(used=counted)
    return wrong
