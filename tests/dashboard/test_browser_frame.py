"""The console's frame in a real browser: sign in, the team's page, the switcher, sign out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, expect

from tests.dashboard.browser import browser_test, screenshot, sign_in
from tests.dashboard.conftest import PASSWORD

pytestmark = browser_test


def test_sign_in_and_switch_teams(page: Page, make_member: Callable[..., Any], make_tenant: Any) -> None:
    first, second = make_tenant("Lighthouse Labs"), make_tenant("Harbour Works")
    user = make_member(first, "owner", username="grace")
    make_member(second, "member", username="grace-2")  # someone else's membership
    from apps.tenants.models import Membership

    Membership.objects.for_tenant(second).create(tenant=second, user=user, role="member")

    page.goto("/console/")
    assert "/console/login" in page.url
    screenshot(page, "sign-in")

    page.get_by_label("Username or e-mail").fill("grace")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()

    sign_in(page, "grace", PASSWORD)
    expect(page.get_by_role("heading", name="Your teams")).to_be_visible()
    page.get_by_role("link", name="Harbour Works").first.click()
    expect(page.get_by_role("heading", name="Harbour Works")).to_be_visible()
    screenshot(page, "team-overview")
    page.locator(".switcher summary").click()
    page.get_by_role("link", name="Lighthouse Labs").click()
    expect(page.get_by_role("heading", name="Lighthouse Labs")).to_be_visible()


def test_the_frame_fits_a_phone(page: Page, make_member: Callable[..., Any], make_tenant: Any) -> None:
    team = make_tenant("Small Screen Co")
    make_member(team, "owner", username="ada")
    page.set_viewport_size({"width": 390, "height": 800})
    sign_in(page, "ada", PASSWORD)
    expect(page.get_by_role("heading", name="Small Screen Co")).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert not overflow
    screenshot(page, "team-overview-phone")
