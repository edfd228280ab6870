"""Accounts, members and keys in a real browser against the real server: sign up, a key made and
seen once, used over HTTP, revoked and refused; an invitation sent and accepted; a member kept off
the keys page. Each page is kept as a screenshot."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from apps.tenants.models import ApiKey, Membership, Tenant
from tests.dashboard.browser import browser_test, screenshot, sign_in
from tests.dashboard.conftest import PASSWORD
from tests.e2e.conftest import LiveServer

pytestmark = browser_test


def test_sign_up_in_the_browser(page: Page) -> None:
    page.goto("/console/login")
    page.get_by_role("link", name="Create an account").click()
    expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
    page.get_by_label("Username").fill("nova")
    page.get_by_label("Email").fill("nova@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill("not the same")
    page.get_by_label("Team name").fill("Nova Robotics")
    page.get_by_role("button", name="Create account and team").click()
    expect(page.get_by_role("alert").first).to_contain_text("password fields didn")
    screenshot(page, "account-sign-up-error")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Create account and team").click()
    expect(page.get_by_role("heading", name="Nova Robotics")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("on the free plan")
    team = Tenant.objects.get(name="Nova Robotics")
    assert Membership.objects.for_tenant(team).get().role == "owner"
    screenshot(page, "account-signed-up")

    page.get_by_role("link", name="nova", exact=True).click()
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    screenshot(page, "account")
    page.get_by_role("link", name="Change password").click()
    expect(page.get_by_role("heading", name="Change your password")).to_be_visible()
    screenshot(page, "account-password-change")
    page.go_back()
    page.get_by_role("link", name="Create another team").click()
    page.get_by_label("Team name").fill("Nova Side Project")
    screenshot(page, "account-new-team")
    page.get_by_role("button", name="Create team").click()
    expect(page.get_by_role("heading", name="Nova Side Project")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
    page.get_by_label("Email").fill("nova@example.com")
    screenshot(page, "account-password-reset")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()
    screenshot(page, "account-password-reset-sent")


def test_a_key_is_seen_once_works_and_is_refused_once_revoked(
    page: Page, console_server: LiveServer, make_member: Callable[..., Any], make_tenant: Any
) -> None:
    team = make_tenant("Keyhole Inc")
    make_member(team, "admin", username="kai")
    sign_in(page, "kai", PASSWORD)
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    screenshot(page, "keys-empty")

    page.get_by_role("link", name="Create a key").first.click()
    page.get_by_label("Name").fill("memory reader")
    page.get_by_label("Preset").select_option("memory-read")
    page.get_by_label("Never").check()
    expect(page.locator("[data-scope-preview]")).to_have_text("memory.read")
    page.get_by_label("Advanced scopes").fill("memory.read, bogus.read")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("alert").first).to_contain_text("unknown area 'bogus'")
    assert not ApiKey.objects.for_tenant(team).exists()
    page.get_by_label("Advanced scopes").fill("")
    screenshot(page, "keys-new")
    page.get_by_role("button", name="Create key").click()

    expect(page.get_by_text("it will not be shown again")).to_be_visible()
    secret = page.locator("#new-key-secret").input_value()
    assert re.fullmatch(r"slop_[a-z]+_[a-z0-9]{8}_[A-Za-z0-9]{38}", secret), secret
    page.get_by_role("button", name="Copy").click()
    expect(page.locator(".copy-status")).not_to_be_empty()
    screenshot(page, "keys-secret-once")
    page.reload()
    expect(page.get_by_text("it will not be shown again")).to_have_count(0)
    assert secret not in page.content()
    expect(page.locator("tr[data-prefix]")).to_have_count(1)

    api = httpx.Client(base_url=console_server.url, headers={"Authorization": f"Bearer {secret}"}, timeout=20)
    assert api.get("/memory").status_code == 200
    assert api.post("/memory", json={"key": "k", "value": 1}).status_code == 403  # read only

    page.get_by_role("link", name="Revoke").click()
    expect(page.get_by_role("heading", name="Revoke “memory reader”?")).to_be_visible()
    screenshot(page, "keys-revoke-confirm")
    page.get_by_role("button", name="Revoke the key").click()
    expect(page.get_by_role("status")).to_contain_text("is revoked")
    expect(page.locator("tr[data-prefix] .status")).to_have_text("revoked")
    screenshot(page, "keys-list")
    refused = api.get("/memory")
    assert refused.status_code == 401, refused.text
    assert refused.json()["code"] == "unauthenticated"


def test_a_member_gets_the_403_page_on_keys(
    page: Page, make_member: Callable[..., Any], make_tenant: Any
) -> None:
    team = make_tenant("Members Only")
    make_member(team, "member", username="mo")
    sign_in(page, "mo", PASSWORD)
    expect(
        page.get_by_role("navigation", name="Sections").get_by_role("link", name="API keys")
    ).to_have_count(0)
    response = page.goto(f"/console/t/{team.slug}/keys")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="You cannot open this page")).to_be_visible()
    screenshot(page, "forbidden-403")


def test_a_missing_console_page_is_the_console_404_page(
    page: Page, make_member: Callable[..., Any], make_tenant: Any
) -> None:
    team = make_tenant("Lost Links")
    make_member(team, "owner", username="lou")
    sign_in(page, "lou", PASSWORD)
    response = page.goto(f"/console/t/{team.slug}/no-such-page")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="There is no such page")).to_be_visible()
    expect(page.get_by_role("link", name="Back to the console")).to_be_visible()
    screenshot(page, "not-found-404")


def test_invite_and_accept_in_the_browser(
    page: Page, make_member: Callable[..., Any], make_tenant: Any
) -> None:
    team = make_tenant("Invite Works")
    make_member(team, "owner", username="olga")
    make_member(team, "member", username="pia")
    sign_in(page, "olga", PASSWORD)
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Members").click()
    expect(page.get_by_role("heading", name="Members")).to_be_visible()
    page.get_by_label("E-mail address").fill("quinn@example.com")
    page.get_by_label("Role", exact=True).select_option("admin")
    page.get_by_role("button", name="Send invitation").click()
    # The test server has no mail server: the page says so and gives the link to pass on.
    notice = page.locator(".messages li").first
    expect(notice).to_contain_text("quinn@example.com")
    link = re.search(r"(/console/invite/[A-Za-z0-9_-]+)", notice.inner_text())
    assert link, notice.inner_text()
    expect(page.get_by_role("cell", name="quinn@example.com")).to_be_visible()
    screenshot(page, "members")

    pia = Membership.objects.for_tenant(team).get(user__username="pia")
    page.get_by_label("Role of pia").select_option("admin")
    page.locator(f"form[action$='/members/{pia.pk}/role'] button").click()
    expect(page.get_by_role("status")).to_contain_text("pia is now admin")
    page.get_by_role("link", name="Remove").first.click()
    expect(page.get_by_role("heading", name="Remove pia?")).to_be_visible()
    screenshot(page, "members-remove-confirm")

    page.get_by_role("button", name="Sign out").click()
    page.goto(link.group(1))
    expect(page.get_by_role("heading", name="Join Invite Works")).to_be_visible()
    screenshot(page, "invitation")
    page.get_by_label("Username").fill("quinn")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Create account and join").click()
    expect(page.get_by_role("heading", name="Invite Works")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("joined Invite Works as admin")
    assert Membership.objects.for_tenant(team).get(user__username="quinn").role == "admin"
    page.goto(link.group(1))
    expect(page.get_by_role("heading", name="This invitation cannot be used")).to_be_visible()
    screenshot(page, "invitation-used")
