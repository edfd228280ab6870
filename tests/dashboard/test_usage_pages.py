"""The usage page and the overview: every role reads them, the numbers are GET /usage's and GET
/billing's (the same selectors), the period picker chooses the days, and another team's usage,
keys and models never reach the page."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from apps.billing.accounts import account_for, clear_limits_cache, current_period
from apps.billing.metering import Kind, Usage, meter
from apps.billing.models import BillingAccount, Plan
from apps.tenants.models import ApiKey, Tenant
from apps.tenants.services import api_key_create

pytestmark = pytest.mark.django_db


def page_data(response: Any) -> dict[str, Any]:
    """The chart data the page carries (json_script #usage-data)."""
    found = re.search(
        rb'<script id="usage-data" type="application/json">(.*?)</script>', response.content, re.S
    )
    assert found, "the page carries no chart data"
    return dict(json.loads(found.group(1)))


def use(
    tenant: Tenant,
    *,
    model: str = "echo",
    tokens: tuple[int, int] = (10, 5),
    key: ApiKey | None = None,
    days_ago: int = 0,
    tool_calls: int = 0,
) -> None:
    """One metered event, through billing's own meter (as a chat exchange or a tool call writes it)."""
    at = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=days_ago)
    usage = Usage(tenant_id=tenant.pk, api_key_id=key.pk if key else None)
    if tool_calls:
        meter(usage=usage, kind=Kind.TOOL, tool="calculator", tool_calls=tool_calls, at=at)
    else:
        meter(usage=usage, kind=Kind.LLM, model=model, input_tokens=tokens[0], output_tokens=tokens[1], at=at)


def usage_url(tenant: Tenant, query: str = "") -> str:
    return f"/console/t/{tenant.slug}/usage/" + (f"?{query}" if query else "")


@pytest.mark.parametrize("role", ["owner", "admin", "member"])
def test_every_role_sees_the_teams_usage(
    console_for: Callable[..., Client], alice: Tenant, role: str
) -> None:
    key = api_key_create(tenant=alice, scopes="*").api_key
    use(alice, model="gpt-4o", tokens=(100, 20), key=key)
    use(alice, model="claude", tokens=(7, 3))
    use(alice, tool_calls=2, key=key)

    response = console_for(alice, role).get(usage_url(alice))

    assert response.status_code == 200
    data = page_data(response)
    today = datetime.now(UTC).date().isoformat()
    assert data["to"] == today and today in data["days"]
    tokens = {series["model"]: series["tokens"] for series in data["models"]}
    assert set(tokens) == {"gpt-4o", "claude"}  # the tool call used no tokens
    assert sum(tokens["gpt-4o"]) == 120 and sum(tokens["claude"]) == 10
    by_key = {row["key"]: row for row in data["keys"]}
    assert by_key[key.prefix]["requests"] == 2 and by_key[key.prefix]["tool_calls"] == 2
    assert by_key["Console (no key)"]["requests"] == 1
    # The same numbers in the tables beside the charts.
    html = response.content.decode()
    assert 'id="table-tokens"' in html and '<td class="num">120</td>' in html
    assert f"<code>{key.prefix}</code>" in html
    assert 'id="chart-tokens"' in html and 'id="chart-keys"' in html
    assert "dashboard/vendor/uPlot.iife.min.js" in html and "dashboard/charts.js" in html


def test_the_page_shows_what_get_usage_answers(
    console_for: Callable[..., Client], alice: Tenant, alice_client: Any
) -> None:
    """Real chats through the API (echo), then the page and GET /usage agree, key by key."""
    for text in ("one two three", "four five"):
        response = alice_client.post(
            "/chat", {"messages": [{"role": "user", "content": text}]}, format="json"
        )
        assert response.status_code == 200, response.content
    assert alice_client.post("/tools/calculator", {"expression": "2*3"}, format="json").status_code == 200

    data = page_data(console_for(alice, "member").get(usage_url(alice)))

    api_keys = alice_client.get("/usage?group_by=key").json()["usage"]
    assert [(r["group"], r["requests"], r["tool_calls"]) for r in api_keys] == [
        (k["key"], k["requests"], k["tool_calls"]) for k in data["keys"]
    ]
    api_models = alice_client.get("/usage?group_by=model").json()["usage"]
    expected = {r["group"]: r["input_tokens"] + r["output_tokens"] for r in api_models if r["group"]}
    assert expected and {s["model"]: sum(s["tokens"]) for s in data["models"]} == expected
    assert "echo" in expected


def test_the_period_picker_chooses_the_days(console_for: Callable[..., Client], alice: Tenant) -> None:
    use(alice, model="recent", days_ago=10)
    use(alice, model="older", days_ago=40)
    use(alice, model="today")
    console = console_for(alice, "member")
    today = datetime.now(UTC).date()

    def models(query: str) -> set[str]:
        response = console.get(usage_url(alice, query))
        assert response.status_code == 200, response.content
        return {series["model"] for series in page_data(response)["models"]}

    last_30 = page_data(console.get(usage_url(alice, "period=30d")))
    assert last_30["from"] == (today - timedelta(days=29)).isoformat() and len(last_30["days"]) == 30
    assert models("period=30d") == {"recent", "today"}
    # Each model's tokens on its own day (the selector's per-day split), nothing on the others.
    series = {s["model"]: s["tokens"] for s in last_30["models"]}
    assert series["recent"] == [15 if n == 19 else 0 for n in range(30)]
    assert series["today"] == [15 if n == 29 else 0 for n in range(30)]
    start = (today - timedelta(days=45)).isoformat()
    end = (today - timedelta(days=35)).isoformat()
    assert models(f"period=custom&from={start}&to={end}") == {"older"}
    assert models(f"from={start}") == {"recent", "older", "today"}  # custom up to today
    # This billing period (the default): from its first day to today.
    period_start = current_period(account_for(alice))[0].date()
    default = page_data(console.get(usage_url(alice)))
    assert default["from"] == period_start.isoformat() and default["to"] == today.isoformat()
    assert "today" in models("period=period") and "older" not in models("period=period")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("period=custom", "Choose the first day of the period."),
        ("period=custom&from=2026-05-10&to=2026-05-01", "Must be on or after the first day."),
        ("period=custom&from=2024-01-01&to=2026-01-01", "At most 366 days after the first day."),
        ("period=custom&from=yesterday", "Enter a valid date."),
        ("period=forever", "Select a valid choice."),
        ("period=30d&from=2026-01-01", "From and to choose a custom period"),
        ("period=30d&group_by=key", "Unknown parameter &#x27;group_by&#x27;"),
    ],
)
def test_a_bad_period_is_explained_on_the_page(
    console_for: Callable[..., Client], alice: Tenant, query: str, message: str
) -> None:
    response = console_for(alice, "member").get(usage_url(alice, query))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert b'id="usage-data"' not in response.content  # no chart of a period it did not understand


def test_an_empty_period_says_so(console_for: Callable[..., Client], alice: Tenant) -> None:
    response = console_for(alice, "member").get(usage_url(alice))
    assert response.status_code == 200
    html = response.content.decode()
    assert "No tokens used in this period." in html and "No requests in this period." in html
    assert "uPlot.iife.min.js" not in html  # nothing to draw: no chart library either
    assert page_data(response)["models"] == []


def test_the_usage_page_shows_the_quota(
    console_for: Callable[..., Client], alice: Tenant, charlie: Tenant
) -> None:
    plan = Plan.objects.create(slug="test-small", name="Small", included_tokens=1000, included_tool_calls=10)
    account = account_for(alice)
    account.plan = plan
    account.save(update_fields=["plan", "updated_at"])
    clear_limits_cache()
    capped = api_key_create(tenant=alice, scopes="*", name="ci", monthly_token_cap=40).api_key
    api_key_create(tenant=alice, scopes="*", name="uncapped")
    use(alice, tokens=(200, 50))
    use(alice, tokens=(30, 20), key=capped)
    use(alice, tool_calls=9)
    other = api_key_create(tenant=charlie, scopes="*", monthly_token_cap=5).api_key

    html = console_for(alice, "member").get(usage_url(alice)).content.decode()

    assert "against the Small plan" in html
    assert re.search(r'data-quota="tokens">.*?300 of 1,000.*?<progress max="100" value="30"', html, re.S)
    # A key with its own cap, against what it used this period; the others have none to show.
    assert re.search(
        rf'class="quota over" data-quota="key-{capped.prefix}">.*?Key {capped.prefix} \(ci\).*?50 of 40.*?'
        r"At its cap: the key&#x27;s requests are refused",
        html,
        re.S,
    )
    assert "(uncapped)" not in html and other.prefix not in html
    assert re.search(r'class="quota near" data-quota="tool_calls">.*?9 of 10.*?value="90"', html, re.S)


def test_another_teams_usage_never_reaches_the_page(
    console_for: Callable[..., Client], make_member: Callable[..., Any], alice: Tenant, charlie: Tenant
) -> None:
    secret = api_key_create(tenant=charlie, scopes="*").api_key
    use(charlie, model="charlie-private-model", tokens=(987_654, 3), key=secret)
    use(charlie, tool_calls=4321, key=secret)
    use(alice, model="echo", tokens=(11, 2))
    console = console_for(alice, "owner")

    for query in ("", "period=30d", f"period=custom&from={(datetime.now(UTC) - timedelta(days=300)).date()}"):
        response = console.get(usage_url(alice, query))
        assert response.status_code == 200
        body = response.content.decode()
        for leak in ("charlie-private-model", secret.prefix, "987654", "987657", "987,657", "4321", "4,321"):
            assert leak not in body, leak
        data = page_data(response)
        assert [s["model"] for s in data["models"]] == ["echo"]
        assert [k["key"] for k in data["keys"]] == ["Console (no key)"]
    for page in (f"/console/t/{alice.slug}/", f"/console/t/{alice.slug}/billing/"):
        body = console.get(page).content.decode()
        assert "987,657" not in body and "4,321" not in body and "987657" not in body
    # Charlie's own pages are a 404 to Alice's owner, whatever the query.
    assert console.get(usage_url(charlie)).status_code == 404
    assert console.get(usage_url(charlie, "period=30d")).status_code == 404
    assert console.get(f"/console/t/{charlie.slug}/").status_code == 404
    # And Charlie's member sees Charlie's numbers, not Alice's.
    charlie_console = console_for(charlie, "member")
    data = page_data(charlie_console.get(usage_url(charlie)))
    assert [s["model"] for s in data["models"]] == ["charlie-private-model"]
    assert [k["key"] for k in data["keys"]] == [secret.prefix]


def test_signed_out_visitors_go_to_sign_in(client: Client, alice: Tenant) -> None:
    response = client.get(usage_url(alice))
    assert response.status_code == 302 and response["Location"].startswith("/console/login?next=")


# --- The overview ---------------------------------------------------------------------------------


def test_the_overview_shows_the_plan_the_period_and_usage_bars(
    console_for: Callable[..., Client], alice: Tenant
) -> None:
    plan = Plan.objects.create(
        slug="test-starter",
        name="Starter",
        included_tokens=2000,
        included_tool_calls=None,
        included_api_keys=4,
    )
    account = account_for(alice)
    account.plan = plan
    account.save(update_fields=["plan", "updated_at"])
    clear_limits_cache()
    key = api_key_create(tenant=alice, scopes="*").api_key
    use(alice, tokens=(1500, 700), key=key)  # 2,200 of 2,000: over
    use(alice, tool_calls=3)

    response = console_for(alice, "member").get(f"/console/t/{alice.slug}/")

    assert response.status_code == 200
    html = response.content.decode()
    start, _ = current_period(account_for(alice))
    assert "Starter plan" in html and f'datetime="{start.isoformat().replace("+00:00", "Z")}"' in html
    assert re.search(r'class="quota over" data-quota="tokens">.*?2,200 of 2,000.*?value="100"', html, re.S)
    assert re.search(r'data-quota="tool_calls">.*?3 of unlimited.*?No limit on this plan', html, re.S)
    assert re.search(r'data-quota="api_keys">.*?1 of 4.*?value="25"', html, re.S)
    assert "Over what the plan includes: requests past it are refused" in html
    assert "No usage yet" not in html
    # Quick links to what a member may open, and not to the owner's pages.
    assert f'href="/console/t/{alice.slug}/usage/"' in html
    assert f'href="/console/t/{alice.slug}/billing/"' not in html


def test_the_overview_of_a_new_team_says_there_is_no_usage_yet(
    console_for: Callable[..., Client], alice: Tenant
) -> None:
    html = console_for(alice, "owner").get(f"/console/t/{alice.slug}/").content.decode()
    assert "No usage yet this period." in html
    assert re.search(r'data-quota="tokens">.*?0 of [\d,]+.*?value="0"', html, re.S)
    assert f'href="/console/t/{alice.slug}/billing/"' in html  # the owner's quick link


def test_the_overview_warns_of_a_failed_payment(console_for: Callable[..., Client], alice: Tenant) -> None:
    account = account_for(alice)
    grace = datetime.now(UTC) + timedelta(days=3)
    BillingAccount.objects.for_tenant(alice).filter(pk=account.pk).update(
        status="past_due", grace_until=grace
    )

    owner = console_for(alice, "owner").get(f"/console/t/{alice.slug}/").content.decode()
    member = console_for(alice, "member").get(f"/console/t/{alice.slug}/").content.decode()

    for html in (owner, member):
        assert 'id="payment-failed"' in html
        assert "The team's last payment failed." in html and f"{grace:%Y-%m-%d}" in html
    assert "Update the payment method</a>" in owner and "The team's owner can update" in member
    BillingAccount.objects.for_tenant(alice).filter(pk=account.pk).update(status="active", grace_until=None)
    assert (
        'id="payment-failed"'
        not in console_for(alice, "admin").get(f"/console/t/{alice.slug}/").content.decode()
    )
