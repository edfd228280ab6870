"""Plans: what the migration seeds, the rate limit a plan gives its team's keys, and
`manage.py billing_sync_plans` linking paid plans to Stripe Products and Prices (through the fake
Stripe server, the official SDK)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from io import StringIO

import pytest
import stripe
from django.core.cache import caches
from django.core.management import CommandError, call_command
from django.test.utils import override_settings

from apps.billing.accounts import account_for
from apps.billing.models import BillingAccount, Plan
from apps.billing.plans import plan_rate_limit_forget
from apps.tenants.models import Tenant
from tests.billing.fake_stripe import FakeStripe
from tests.billing.plans import seed_plans
from tests.conftest import SlopClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def plans() -> dict[str, Plan]:
    return seed_plans()


@pytest.fixture
def frozen_rate_window(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr("apps.tenants.throttling._clock", lambda: 1_800_000_030.0)
    caches["state"].clear()
    plan_rate_limit_forget()
    yield
    caches["state"].clear()
    plan_rate_limit_forget()


def test_the_seeded_plans_grow_from_free_to_team(plans: dict[str, Plan]) -> None:
    free, pro, team = plans["free"], plans["pro"], plans["team"]
    assert free.monthly_price_cents == 0 and not free.overage_allowed
    assert 0 < pro.monthly_price_cents < team.monthly_price_cents
    for field in (
        "included_tokens",
        "included_tool_calls",
        "included_memory_items",
        "included_resource_bytes",
        "included_api_keys",
        "included_members",
    ):
        assert 0 < getattr(free, field) < getattr(pro, field) < getattr(team, field), field
    # Free keys get the platform's limit (SLOP_RATE_LIMIT_PER_MINUTE); paid plans more.
    assert free.rate_limit_per_minute is None
    assert pro.rate_limit_per_minute is not None and team.rate_limit_per_minute is not None
    assert pro.rate_limit_per_minute < team.rate_limit_per_minute


def test_seeding_again_keeps_what_an_operator_edited(plans: dict[str, Plan]) -> None:
    Plan.objects.filter(slug="pro").update(included_tokens=42)
    assert seed_plans()["pro"].included_tokens == 42


def _on_plan(tenant: Tenant, slug: str) -> BillingAccount:
    account = account_for(tenant)
    account.plan = Plan.objects.get(slug=slug)
    account.save()
    return account


@override_settings(RATE_LIMIT_PER_MINUTE=100)
def test_a_plans_rate_limit_applies_to_its_teams_keys(
    plans: dict[str, Plan],
    frozen_rate_window: None,
    client_for: Callable[..., SlopClient],
    alice: Tenant,
    charlie: Tenant,
) -> None:
    Plan.objects.filter(slug="pro").update(rate_limit_per_minute=2)
    _on_plan(alice, "pro")
    alices = client_for(alice)
    assert [alices.get("/info").status_code for _ in range(3)] == [200, 200, 429]
    # Charlie is on free: the platform's limit.
    charlies = client_for(charlie)
    assert [charlies.get("/info").status_code for _ in range(5)] == [200] * 5


@override_settings(RATE_LIMIT_PER_MINUTE=1)
def test_an_override_plans_limit_wins_and_a_tenants_own_limit_wins_over_both(
    plans: dict[str, Plan], frozen_rate_window: None, client_for: Callable[..., SlopClient], alice: Tenant
) -> None:
    Plan.objects.filter(slug="team").update(rate_limit_per_minute=3)
    account = _on_plan(alice, "pro")
    account.override_plan = Plan.objects.get(slug="team")
    account.override_reason = "pilot"
    account.save()
    plan_rate_limit_forget(alice.pk)
    client = client_for(alice)
    assert [client.get("/info").status_code for _ in range(4)] == [200] * 3 + [429]

    Tenant.objects.filter(pk=alice.pk).update(rate_limit_per_minute=5)
    client = client_for(alice)  # a new key: its own counter, and the tenant read afresh
    assert [client.get("/info").status_code for _ in range(6)] == [200] * 5 + [429]


@override_settings(RATE_LIMIT_PER_MINUTE=2)
def test_a_tenant_that_never_looked_at_billing_is_on_free(
    plans: dict[str, Plan], frozen_rate_window: None, client_for: Callable[..., SlopClient], alice: Tenant
) -> None:
    Plan.objects.filter(slug="free").update(rate_limit_per_minute=4)
    assert not BillingAccount.objects.for_tenant(alice).exists()
    client = client_for(alice)
    assert [client.get("/info").status_code for _ in range(5)] == [200] * 4 + [429]


# --- billing_sync_plans ---------------------------------------------------------------------------


def _sync(*args: str) -> list[str]:
    out = StringIO()
    call_command("billing_sync_plans", *args, stdout=out)
    return out.getvalue().splitlines()


def test_sync_creates_a_product_and_monthly_price_per_paid_plan(
    plans: dict[str, Plan], fake_stripe: FakeStripe, billing_stripe_client: stripe.StripeClient
) -> None:
    Plan.objects.filter(slug__in=["pro", "team"]).update(stripe_price_id="")
    lines = _sync()
    assert lines[-1] == "2 plan(s) linked to Stripe"
    # Created, or found by its lookup key when an earlier test of the session made it.
    assert lines[0].startswith("pro: product slop_plan_pro, price price_")
    assert lines[0].endswith(("(created)", "(found)"))
    assert not any(line.startswith("free") for line in lines)  # nothing to sell
    for slug in ("pro", "team"):
        plan = Plan.objects.get(slug=slug)
        price = billing_stripe_client.v1.prices.retrieve(plan.stripe_price_id).to_dict()
        assert price["unit_amount"] == plan.monthly_price_cents
        assert price["currency"] == "usd" and price["recurring"]["interval"] == "month"
        assert price["product"] == f"slop_plan_{slug}"
        product = billing_stripe_client.v1.products.retrieve(f"slop_plan_{slug}").to_dict()
        assert product["metadata"] == {"slop_plan": slug}


def test_sync_again_creates_nothing_and_a_price_change_makes_a_new_price(
    plans: dict[str, Plan], fake_stripe: FakeStripe
) -> None:
    # An amount no other test sells, so the first run has to create its price.
    Plan.objects.filter(slug="pro").update(stripe_price_id="", monthly_price_cents=2917)
    assert _sync("pro")[0].endswith("(created)")
    first = Plan.objects.get(slug="pro").stripe_price_id
    prices = set(fake_stripe.prices)
    assert _sync("pro")[0].endswith(f"price {first} (linked)")
    # A plan whose link was lost finds its price again by the lookup key.
    Plan.objects.filter(slug="pro").update(stripe_price_id="")
    assert _sync("pro")[0].endswith(f"price {first} (found)")
    assert set(fake_stripe.prices) == prices  # nothing new at Stripe

    Plan.objects.filter(slug="pro").update(monthly_price_cents=3917)
    line = _sync("pro")[0]
    second = Plan.objects.get(slug="pro").stripe_price_id
    assert second != first and line.endswith(f"price {second} (replaced)")
    assert fake_stripe.prices[second]["unit_amount"] == 3917


def test_sync_without_stripe_says_which_setting_is_missing(plans: dict[str, Plan]) -> None:
    with override_settings(STRIPE_SECRET_KEY=None), pytest.raises(CommandError, match="STRIPE_SECRET_KEY"):
        _sync()


# --- metered prices ------------------------------------------------------------------------------

UNITS = ("input_tokens", "output_tokens", "tool_calls", "job_seconds")


def _metered(fake_stripe: FakeStripe, slug: str) -> dict[str, dict[str, object]]:
    plan = Plan.objects.get(slug=slug)
    return {unit: fake_stripe.prices[price] for unit, price in plan.stripe_metered_prices.items()}


def test_sync_creates_the_meters_and_a_metered_price_per_unit_the_plan_prices(
    plans: dict[str, Plan], fake_stripe: FakeStripe, billing_stripe_client: stripe.StripeClient
) -> None:
    Plan.objects.filter(slug__in=["pro", "team"]).update(stripe_price_id="", stripe_metered_prices={})
    lines = _sync()

    meters = {m["event_name"]: m["id"] for m in fake_stripe.meters.values()}
    assert set(meters) == {f"slop_{unit}" for unit in UNITS}
    pro = _metered(fake_stripe, "pro")
    assert set(pro) == set(UNITS) and set(_metered(fake_stripe, "team")) == set(UNITS)
    assert "pro: metered tool_calls price price_" in "\n".join(lines)
    for unit, price in pro.items():
        recurring = price["recurring"]
        assert isinstance(recurring, dict)
        assert recurring["usage_type"] == "metered" and recurring["meter"] == meters[f"slop_{unit}"]
        assert recurring["interval"] == "month" and price["currency"] == "usd"
        assert price["product"] == "slop_plan_pro" and price["lookup_key"] == f"slop_pro_{unit}"
    # Job seconds: nothing included, 10 per million seconds = 0.001 cents a second.
    assert pro["job_seconds"]["billing_scheme"] == "per_unit"
    assert pro["job_seconds"]["unit_amount_decimal"] == "0.001"  # as the fake stored it: the wire string
    # Tool calls: what the plan includes is a free first tier, then 500 per million = 0.05 cents.
    tiered = billing_stripe_client.v1.prices.retrieve(
        str(pro["tool_calls"]["id"]), params={"expand": ["tiers"]}
    ).to_dict()
    assert tiered["billing_scheme"] == "tiered" and tiered["tiers_mode"] == "graduated"
    # (The SDK reads Stripe's decimal strings as Decimals.)
    assert [(t["up_to"], t["unit_amount"], str(t["unit_amount_decimal"])) for t in tiered["tiers"]] == [
        (plans["pro"].included_tool_calls, 0, "0"),
        (None, None, "0.05"),
    ]
    tokens = billing_stripe_client.v1.prices.retrieve(
        str(pro["input_tokens"]["id"]), params={"expand": ["tiers"]}
    ).to_dict()
    assert tokens["tiers"][0]["up_to"] == plans["pro"].included_tokens
    assert str(tokens["tiers"][1]["unit_amount_decimal"]) == "0.0002"  # 2.00 per million tokens


def test_sync_twice_creates_no_meter_or_price_and_a_changed_unit_price_makes_a_new_one(
    plans: dict[str, Plan], fake_stripe: FakeStripe
) -> None:
    _sync()
    meters, prices = dict(fake_stripe.meters), set(fake_stripe.prices)
    first = dict(Plan.objects.get(slug="pro").stripe_metered_prices)

    lines = _sync()

    assert fake_stripe.meters == meters and set(fake_stripe.prices) == prices  # nothing new at Stripe
    assert all(line.endswith("(linked)") for line in lines if "metered" in line)
    # Links lost: found again by their lookup keys, still nothing new.
    Plan.objects.filter(slug="pro").update(stripe_metered_prices={})
    assert "pro: metered tool_calls price " + first["tool_calls"] + " (found)" in _sync("pro")
    assert set(fake_stripe.prices) == prices and Plan.objects.get(slug="pro").stripe_metered_prices == first

    pro = Plan.objects.get(slug="pro")
    pro.unit_prices = {**pro.unit_prices, "tool_calls": "700"}
    pro.save()
    lines = _sync("pro")
    second = Plan.objects.get(slug="pro").stripe_metered_prices
    assert second["tool_calls"] != first["tool_calls"] and second["input_tokens"] == first["input_tokens"]
    assert f"pro: metered tool_calls price {second['tool_calls']} (replaced)" in lines
    # The lookup key moved to the new price: the old one keeps its subscriptions, sells no more.
    assert fake_stripe.prices[second["tool_calls"]]["lookup_key"] == "slop_pro_tool_calls"
    assert fake_stripe.prices[first["tool_calls"]]["lookup_key"] is None
    assert set(fake_stripe.prices) == prices | {second["tool_calls"]}


def test_a_plan_without_overage_gets_no_metered_prices(
    plans: dict[str, Plan], fake_stripe: FakeStripe
) -> None:
    Plan.objects.filter(slug="pro").update(
        overage_allowed=False, stripe_metered_prices={"tool_calls": "price_x"}
    )
    lines = _sync("pro")
    assert not any("metered" in line for line in lines)
    assert Plan.objects.get(slug="pro").stripe_metered_prices == {}


def test_a_unit_price_that_is_not_a_number_is_refused_by_name(
    plans: dict[str, Plan], fake_stripe: FakeStripe
) -> None:
    Plan.objects.filter(slug="pro").update(unit_prices={"tool_calls": "cheap"})
    with pytest.raises(CommandError, match=r"unit_prices\['tool_calls'\]"):
        _sync("pro")
