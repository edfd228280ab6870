"""Usage, the overview and billing in a real browser: usage made by real chats and a tool call over
the API, the charts drawn with it (uPlot's canvases, not blank) and the tables beside them holding
GET /usage's numbers, the overview's bars, billing's refusal shown on the page, and every console
page within the 300 KB budget of assets on a first load."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, Response, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from apps.billing.models import Plan
from apps.tenants.models import Tenant
from apps.tenants.services import api_key_create
from tests.billing.plans import seed_plans
from tests.dashboard.browser import browser_test, screenshot, sign_in
from tests.dashboard.conftest import PASSWORD
from tests.e2e.conftest import LiveServer

pytestmark = browser_test

BUDGET = 300 * 1024  # bytes of assets on a page's first load (issue 15)

# How many pixels of a canvas are drawn on (not transparent): a chart with data draws lines or bars.
DRAWN_PIXELS = """(canvas) => {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let drawn = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) drawn++;
  return drawn;
}"""


def chat(server: LiveServer, key: str, text: str) -> None:
    response = httpx.post(
        f"{server.url}/chat",
        json={"messages": [{"role": "user", "content": text}]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def make_usage(server: LiveServer, team: Tenant) -> tuple[str, dict[str, Any]]:
    """A few echo chats and a tool call with a key of the team, over HTTP; what GET /usage says."""
    issued = api_key_create(tenant=team, scopes="*")
    for text in ("hello there", "how many tokens is this sentence", "and one more"):
        chat(server, issued.plaintext, text)
    headers = {"Authorization": f"Bearer {issued.plaintext}"}
    tool = httpx.post(
        f"{server.url}/tools/calculator", json={"expression": "6*7"}, headers=headers, timeout=30
    )
    assert tool.status_code == 200, tool.text
    by_key = httpx.get(f"{server.url}/usage?group_by=key", headers=headers, timeout=30).json()["usage"]
    by_model = httpx.get(f"{server.url}/usage?group_by=model", headers=headers, timeout=30).json()["usage"]
    return issued.api_key.prefix, {"keys": by_key, "models": by_model}


def test_usage_charts_render_with_the_teams_data(
    page: Page, console_server: LiveServer, make_member: Callable[..., Any], make_tenant: Any
) -> None:
    seed_plans()
    team = make_tenant("Chart Makers")
    make_member(team, "member", username="lin")
    prefix, api = make_usage(console_server, team)
    [echo] = [row for row in api["models"] if row["group"] == "echo"]
    echo_tokens = echo["input_tokens"] + echo["output_tokens"]
    [key_row] = [row for row in api["keys"] if row["group"] == prefix]

    sign_in(page, "lin", PASSWORD)
    page.goto(f"/console/t/{team.slug}/usage/")

    # The tokens chart: uPlot drew a canvas, with a series named after the model, and not blank.
    tokens_chart = page.locator("#chart-tokens")
    expect(tokens_chart.locator("canvas")).to_have_count(1)
    expect(tokens_chart.locator(".u-legend")).to_contain_text("echo")
    assert tokens_chart.locator("canvas").evaluate(DRAWN_PIXELS) > 200
    keys_chart = page.locator("#chart-keys")
    expect(keys_chart.locator("canvas")).to_have_count(1)
    expect(keys_chart.locator(".u-legend")).to_contain_text("Requests")
    assert keys_chart.locator("canvas").evaluate(DRAWN_PIXELS) > 200
    # The tables beside them hold GET /usage's numbers.
    token_table = page.locator("#table-tokens")
    expect(token_table.locator("thead")).to_contain_text("echo")
    expect(token_table.locator("tbody tr").first.locator("td").last).to_have_text(str(echo_tokens))
    key_cells = page.locator("#table-keys tbody tr", has_text=prefix).locator("td")
    expect(key_cells.nth(0)).to_have_text(str(key_row["requests"]))
    expect(key_cells.nth(1)).to_have_text(str(key_row["tool_calls"]))
    assert key_row["requests"] == 4 and key_row["tool_calls"] == 1
    # The quota against the free plan, with the numbers.
    quota = page.locator('[data-quota="tokens"] .quota-numbers')
    expect(quota).to_contain_text(f"{echo_tokens:,} of 200,000")
    screenshot(page, "usage")

    # Last 30 days through the picker, then a custom period before any usage: the empty states.
    page.get_by_role("link", name="Last 30 days").click()
    expect(page.get_by_role("link", name="Last 30 days")).to_have_attribute("aria-current", "page")
    expect(page.locator("#chart-tokens canvas")).to_have_count(1)
    page.get_by_label("From").fill("2020-01-01")
    page.get_by_label("To (included)").fill("2020-01-31")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_text("No tokens used in this period.")).to_be_visible()
    expect(page.locator("canvas")).to_have_count(0)
    screenshot(page, "usage-empty-period")
    page.get_by_label("From").fill("2020-02-01")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#to-errors")).to_have_text("Must be on or after the first day.")
    expect(page.get_by_label("To (included)")).to_have_attribute("aria-describedby", "to-errors")
    expect(page.get_by_label("To (included)")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "usage-bad-period")

    # The phone layout: charts and tables stacked, nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"/console/t/{team.slug}/usage/?period=30d")
    expect(page.locator("#chart-tokens canvas")).to_have_count(1)
    assert not page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    screenshot(page, "usage-phone")


def test_overview_bars_and_billing_in_the_browser(
    page: Page, console_server: LiveServer, make_member: Callable[..., Any], make_tenant: Any
) -> None:
    seed_plans()
    team = make_tenant("Bar Raisers")
    make_member(team, "owner", username="ola")
    sign_in(page, "ola", PASSWORD)
    page.goto(f"/console/t/{team.slug}/")
    expect(page.get_by_text("No usage yet this period.")).to_be_visible()
    screenshot(page, "overview-empty")

    _, api = make_usage(console_server, team)
    used = sum(row["input_tokens"] + row["output_tokens"] for row in api["keys"])
    page.reload()
    tokens = page.locator('[data-quota="tokens"]')
    expect(tokens.locator(".quota-numbers")).to_contain_text(f"{used:,} of 200,000")
    assert tokens.locator("progress").get_attribute("value") == str(round(100 * used / 200_000))
    # The free plan's own caps (a migration may raise them): read, not written down here.
    free = Plan.objects.get(slug="free")
    keys_cap, members_cap = free.included_api_keys, free.included_members
    expect(page.locator('[data-quota="api_keys"] .quota-numbers')).to_contain_text(f"1 of {keys_cap}")
    progress = page.locator('[data-quota="api_keys"] progress').get_attribute("value")
    assert progress == str(round(100 / keys_cap))
    expect(page.locator('[data-quota="members"] .quota-numbers')).to_contain_text(f"1 of {members_cap}")
    expect(page.get_by_role("link", name="Usage by day, model and key")).to_be_visible()
    screenshot(page, "overview")

    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Billing").click()
    expect(page.get_by_role("heading", name="Free plan")).to_be_visible()
    expect(page.locator('[data-plan="pro"]')).to_contain_text("29.00 USD")
    screenshot(page, "billing")
    # This server has no Stripe key: the refusal is on the page, the browser stays in the console.
    page.get_by_role("button", name="Upgrade to Pro").click()
    expect(page.locator(".messages li.error")).to_contain_text(
        "Could not start the checkout: Billing is not configured on this server: set STRIPE_SECRET_KEY"
    )
    assert page.url.endswith(f"/console/t/{team.slug}/billing/")
    page.get_by_role("button", name="Manage billing / invoices").click()
    expect(page.locator(".messages li.error")).to_contain_text("Could not open the billing portal")
    screenshot(page, "billing-not-configured")


def _first_load_bytes(browser: Browser, state: Any, base_url: str, path: str) -> tuple[int, list[str]]:
    """What a first visit to `path` loads (a fresh context: nothing cached), in bytes as decoded:
    the page and every asset it fetched until the network went quiet. A stream a page keeps open
    (server-sent events) is not an asset and has no end to wait for, so it is left out."""
    context = browser.new_context(base_url=base_url, storage_state=state)
    try:
        tab = context.new_page()
        responses: list[Response] = []
        tab.on("response", lambda response: responses.append(response))
        assert (response := tab.goto(path, wait_until="load")) is not None and response.ok, path
        # A page that keeps polling never goes quiet: what it loaded by then is its first load.
        with contextlib.suppress(PlaywrightTimeout):
            tab.wait_for_load_state("networkidle", timeout=10_000)
        assets = [
            r
            for r in responses
            if "text/event-stream" not in r.headers.get("content-type", "")
            and not r.url.endswith("/favicon.ico")
        ]
        failed = [(r.status, r.url) for r in assets if r.status >= 400]
        assert not failed, failed
        sizes = [(len(r.body()), r.url) for r in assets if r.status < 300]
        return sum(size for size, _ in sizes), [f"{url} {size}" for size, url in sizes]
    finally:
        context.close()


def test_every_console_page_is_within_the_asset_budget(
    page: Page, console_server: LiveServer, make_member: Callable[..., Any], make_tenant: Any
) -> None:
    seed_plans()
    team = make_tenant("Light Pages")
    make_member(team, "owner", username="ines")
    make_usage(console_server, team)  # the usage page with charts: its heaviest form
    sign_in(page, "ines", PASSWORD)
    page.goto(f"/console/t/{team.slug}/")
    sections = page.get_by_role("navigation", name="Sections").get_by_role("link")
    paths = [str(href) for href in sections.evaluate_all("links => links.map(a => a.getAttribute('href'))")]
    assert f"/console/t/{team.slug}/usage/" in paths and f"/console/t/{team.slug}/billing/" in paths
    state = page.context.storage_state()
    browser = page.context.browser
    assert browser is not None

    weights = {}
    usage = f"/console/t/{team.slug}/usage/"
    for path in [*paths, f"{usage}?period=30d"]:
        total, loaded = _first_load_bytes(browser, state, console_server.url, path)
        weights[path] = total
        assert total <= BUDGET, (path, total, loaded)
        if path == usage:
            assert any("uPlot.iife.min.js" in line for line in loaded)  # the chart library was among them
            assert total > 50_000
    # Signed out: the sign-in page.
    total, loaded = _first_load_bytes(browser, None, console_server.url, "/console/login")
    assert total <= BUDGET, loaded
    print("first-load bytes:", weights)
