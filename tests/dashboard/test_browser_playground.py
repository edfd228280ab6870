"""The playground and the agents page in a real browser against the real server: tokens arriving
one by one over the WebSocket (a member ticket, never a key), threads reopened with their history,
agents and patterns, tool calls, errors; agents created and refused in the form."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import Any

from playwright.sync_api import Page, expect

from apps.agents.services import agent_create
from apps.billing.accounts import account_for
from apps.billing.models import Plan
from apps.llm.services import model_config_create
from apps.tenants.models import Membership, Tenant
from tests.dashboard.browser import browser_test, screenshot, sign_in
from tests.dashboard.conftest import PASSWORD

pytestmark = browser_test

# Records the streaming reply's text each time it changes, before anything is sent.
WATCH_REPLY = """() => {
  window.seen = [];
  new MutationObserver(() => {
    const text = document.querySelector('#pg-transcript .pg-assistant:last-of-type .pg-text');
    if (text && text.textContent && window.seen[window.seen.length - 1] !== text.textContent) {
      window.seen.push(text.textContent);
    }
  }).observe(document.getElementById('pg-transcript'), {childList: true, subtree: true, characterData: true});
}"""


def slow_echo(team: Tenant) -> None:
    """The team's own `echo`, a word every 150 ms, so tokens visibly arrive one by one."""
    model_config_create(tenant=team, name="echo", provider="echo", options={"delay_ms": 150})


def open_playground(page: Page, team: Tenant, query: str = "") -> None:
    page.goto(f"/console/t/{team.slug}/playground{query}")
    expect(page.get_by_role("heading", name="Playground")).to_be_visible()


def send(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()


def wait_until_done(page: Page) -> None:
    expect(page.get_by_role("button", name="Send")).to_be_enabled()


def test_tokens_stream_in_and_threads_reopen(
    page: Page, make_member: Callable[..., Any], make_tenant: Any
) -> None:
    team = make_tenant("Streaming Co")
    slow_echo(team)
    make_member(team, "member", username="mo")
    sign_in(page, "mo", PASSWORD)
    open_playground(page, team)
    screenshot(page, "playground-empty")
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.evaluate(WATCH_REPLY)

    words = "one two three four five six seven eight"
    send(page, words)
    expect(page.locator(".pg-assistant .pg-text").last).to_have_text(words, timeout=20_000)
    wait_until_done(page)
    seen: list[str] = page.evaluate("window.seen")
    # The reply grew a piece at a time: several partial texts, each extending the one before.
    assert len(seen) >= 4 and seen[-1] == words, seen
    assert all(later.startswith(earlier) and later != earlier for earlier, later in pairwise(seen)), seen
    assert len(seen[0]) < len(words) / 2, seen
    expect(page.locator(".pg-usage").last).to_contain_text("8 out")
    # The stream went over the WebSocket with a ticket, never a key.
    assert sockets and all("/chat/ws?ticket=tkt_" in url for url in sockets), sockets
    assert "sk_" not in page.content() and "slop_" not in page.content().replace("SLOP Platform", "")
    first_thread = page.locator("#pg-thread-id").inner_text()
    expect(page.locator("#pg-threads a[aria-current]")).to_contain_text(words)
    assert first_thread in page.url
    screenshot(page, "playground-streamed")

    page.get_by_role("link", name="New thread").click()
    expect(page.get_by_role("heading", name="New thread")).to_be_visible()
    send(page, "a second thread")
    expect(page.locator(".pg-assistant .pg-text").last).to_have_text("a second thread", timeout=20_000)
    wait_until_done(page)
    # Newest first: the second thread above the first.
    expect(page.locator("#pg-threads li").first).to_contain_text("a second thread")
    expect(page.locator("#pg-threads li").nth(1)).to_contain_text(words)

    page.locator("#pg-threads li").nth(1).get_by_role("link").click()
    expect(page.locator("#pg-thread-id")).to_have_text(first_thread)
    expect(page.locator("#pg-transcript .pg-user .pg-text")).to_have_text([words])
    expect(page.locator("#pg-transcript .pg-assistant .pg-text")).to_have_text([words])
    expect(page.locator("#pg-transcript")).not_to_contain_text("a second thread")
    # The thread goes on where it was: the reply lands in the same thread.
    send(page, "and more")
    expect(page.locator(".pg-assistant .pg-text").last).to_have_text("and more", timeout=20_000)
    wait_until_done(page)
    page.reload()
    expect(page.locator("#pg-transcript .pg-user .pg-text")).to_have_text([words, "and more"])
    screenshot(page, "playground-thread-reopened")

    # Stop cuts a reply short: what was said is kept, marked incomplete.
    long_text = " ".join(f"word{i}" for i in range(60))
    send(page, long_text)
    expect(page.locator(".pg-assistant.pg-streaming .pg-text")).to_contain_text("word1")
    page.get_by_role("button", name="Stop").click()
    expect(page.locator(".pg-usage").last).to_contain_text("incomplete")
    wait_until_done(page)
    shown = page.locator(".pg-assistant .pg-text").last.inner_text()
    assert shown.startswith("word0 word1") and len(shown) < len(long_text), shown


def test_agents_patterns_and_tool_calls_show_as_they_happen(
    page: Page, make_member: Callable[..., Any], make_tenant: Any
) -> None:
    team = make_tenant("Agents Co")
    agent_create(tenant=team, agent_id="tech", fields={"name": "Tech", "description": "fixes things"})
    agent_create(
        tenant=team,
        agent_id="support",
        fields={"name": "Support", "description": "answers", "handoffs": ["tech"]},
    )
    make_member(team, "member", username="max")
    sign_in(page, "max", PASSWORD)

    page.goto(f"/console/t/{team.slug}/agents")
    screenshot(page, "agents-member")
    expect(page.get_by_role("link", name="New agent")).to_have_count(0)
    page.locator("#agent-support").get_by_role("link", name="Try in playground").click()
    expect(page.get_by_label("Talk to")).to_have_value("agent:support")

    send(page, '/tool calculator {"expression": "6*7"}')
    tool = page.locator(".pg-tool").last
    expect(tool.locator(".pg-tool-name")).to_have_text("calculator")
    expect(tool.locator(".pg-tool-args")).to_contain_text('"expression": "6*7"')
    expect(tool.locator(".pg-tool-result")).to_contain_text("42")
    expect(page.locator(".pg-switch").last).to_contain_text("support answers")
    expect(page.locator(".pg-assistant .pg-agent-name").last).to_have_text("support")
    wait_until_done(page)

    # A handoff: support transfers the conversation to tech, shown as it happens.
    send(page, "/tool transfer_to_tech {}")
    expect(page.locator(".pg-switch").last).to_contain_text("tech answers")
    expect(page.locator(".pg-switch").last).to_contain_text("handoff from support")
    wait_until_done(page)
    expect(page.locator(".pg-assistant .pg-agent-name").last).to_have_text("tech")
    expect(page.locator("#pg-error")).to_be_hidden()

    page.get_by_label("Pattern").select_option("sequential")
    expect(page.get_by_label("Talk to")).to_be_disabled()
    page.locator("input[name=agents][value=tech]").check()
    page.locator("input[name=agents][value=support]").check()
    send(page, "through both")
    expect(page.locator(".pg-switch")).to_contain_text(["support answers", "tech answers", "support answers"])
    wait_until_done(page)
    # calculator: support; the handoff: support, then tech; the sequence: tech, then support.
    names = ["support", "support", "tech", "tech", "support"]
    expect(page.locator(".pg-assistant .pg-agent-name")).to_have_text(names)
    expect(page.locator("#pg-error")).to_be_hidden()

    # Parallel without an aggregator: both answer, and the reply holds both answers.
    page.get_by_label("Pattern").select_option("parallel")
    send(page, "at once")
    wait_until_done(page)
    expect(page.locator(".pg-switch").last).to_contain_text("parallel")
    expect(page.locator(".pg-assistant .pg-text").last).to_contain_text("at once")
    expect(page.locator("#pg-error")).to_be_hidden()

    # A member's role runs safe tools only: the model's call to memory_write is refused, visibly.
    page.get_by_label("Pattern").select_option("")
    page.get_by_label("Talk to").select_option("model:echo")
    send(page, '/tool memory_write {"key": "notes/x", "value": "nope"}')
    refused = page.locator(".pg-tool").last
    expect(refused.locator(".pg-tool-error")).to_contain_text("scope_violation")
    expect(refused.locator(".pg-tool-state")).to_have_text("failed")
    wait_until_done(page)
    screenshot(page, "playground-agents-and-tools")


def test_errors_show_in_the_page(page: Page, make_member: Callable[..., Any], make_tenant: Any) -> None:
    broke, working = make_tenant("Broke Co"), make_tenant("Working Co")
    plan = Plan.objects.create(slug="test-no-tokens", name="No tokens", included_tokens=0)
    account = account_for(broke)
    account.plan = plan
    account.save(update_fields=["plan", "updated_at"])
    user = make_member(broke, "member", username="bo")
    membership = Membership.objects.for_tenant(working).create(tenant=working, user=user, role="member")
    # A model whose provider is unreachable: an upstream failure.
    model_config_create(
        tenant=working, name="unreachable", provider="openai", base_url="http://127.0.0.1:9/v1"
    )
    sign_in(page, "bo", PASSWORD)

    open_playground(page, broke)
    send(page, "anything at all")
    error = page.get_by_role("alert")
    expect(error).to_contain_text("quota_exceeded 402")
    expect(error).to_contain_text("quota is used up")
    wait_until_done(page)
    # Refused before anything was stored: still a new thread, none listed.
    expect(page.get_by_role("heading", name="New thread")).to_be_visible()
    expect(page.locator("#pg-threads")).to_contain_text("No threads yet")
    screenshot(page, "playground-quota-error")

    open_playground(page, working)
    page.get_by_label("Talk to").select_option("model:unreachable")
    send(page, "hello?")
    expect(page.get_by_role("alert")).to_contain_text("The model's provider failed.")
    wait_until_done(page)

    # Removed from the team while the page is open: the next message is refused at once.
    page.get_by_label("Talk to").select_option("model:echo")
    membership.delete()
    send(page, "still here?")
    expect(page.get_by_role("alert")).to_contain_text("no longer allowed in this team")
    wait_until_done(page)
    expect(page.locator(".pg-assistant")).to_have_count(0)
    screenshot(page, "playground-removed-member")

    page.set_viewport_size({"width": 390, "height": 800})
    open_playground(page, broke)
    assert not page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    screenshot(page, "playground-phone")


def test_admins_write_agents_and_see_the_apis_errors(
    page: Page, make_member: Callable[..., Any], make_tenant: Any
) -> None:
    team = make_tenant("Builders Co")
    make_member(team, "admin", username="ann")
    sign_in(page, "ann", PASSWORD)
    page.goto(f"/console/t/{team.slug}/agents")
    expect(page.get_by_text("This team has no agents yet.")).to_be_visible()
    page.get_by_role("link", name="New agent").click()
    page.get_by_label("Id").fill("Bad Id")
    page.get_by_role("button", name="Create agent").click()
    expect(page.locator(".errorlist")).to_contain_text("Must be 1-64 of a-z, 0-9, _ and -.")
    screenshot(page, "agent-form-error")

    page.get_by_label("Id").fill("helper")
    page.get_by_label("Name").fill("Helper")
    page.get_by_label("Description").fill("Helps with anything")
    page.get_by_label("Only these tools:").check()
    page.get_by_label("calculator").check()
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_role("status")).to_contain_text("Agent helper created.")
    row = page.locator("#agent-helper")
    expect(row).to_contain_text("Helps with anything")
    expect(row).to_contain_text("calculator")
    screenshot(page, "agents-admin")

    page.get_by_role("link", name="New agent").click()
    page.get_by_label("Id").fill("front")
    page.get_by_label("helper").check()
    page.get_by_role("button", name="Create agent").click()
    expect(page.locator("#agent-front")).to_contain_text("helper")

    page.locator("#agent-helper").get_by_role("link", name="Delete").click()
    expect(page.get_by_text("Remove it from their handoffs first")).to_be_visible()
    screenshot(page, "agent-delete-refused")
    page.goto(f"/console/t/{team.slug}/agents")
    page.locator("#agent-front").get_by_role("link", name="Delete").click()
    page.get_by_role("button", name="Delete agent").click()
    expect(page.get_by_role("status")).to_contain_text("Agent front deleted.")
