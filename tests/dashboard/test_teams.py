"""Who may open a team's pages: members of that team only, and each page's least role."""

from __future__ import annotations

from collections.abc import Callable

from django.test import Client

from apps.tenants.models import Tenant


def test_the_root_sends_people_to_the_console(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/console/"


def test_signed_out_visitors_are_sent_to_sign_in(client: Client, alice: Tenant) -> None:
    response = client.get(f"/console/t/{alice.slug}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/console/login?next=")


def test_sign_in_page_renders_with_a_csrf_token(client: Client) -> None:
    response = client.get("/console/login")
    assert response.status_code == 200
    assert b"csrfmiddlewaretoken" in response.content and b'for="id_password"' in response.content


def test_a_member_opens_their_team(console_for: Callable[..., Client], alice: Tenant) -> None:
    response = console_for(alice, "member").get(f"/console/t/{alice.slug}/")
    assert response.status_code == 200
    assert alice.name.encode() in response.content


def test_another_team_is_a_404_not_a_403(
    console_for: Callable[..., Client], alice: Tenant, charlie: Tenant
) -> None:
    console = console_for(alice, "owner")
    response = console.get(f"/console/t/{charlie.slug}/")
    assert response.status_code == 404
    assert charlie.name.encode() not in response.content
    # The switcher lists only the user's own teams.
    home = console.get(f"/console/t/{alice.slug}/")
    assert charlie.name.encode() not in home.content and charlie.slug.encode() not in home.content


def test_landing_goes_straight_to_a_single_team(console_for: Callable[..., Client], alice: Tenant) -> None:
    response = console_for(alice).get("/console/")
    assert response.status_code == 302 and response["Location"] == f"/console/t/{alice.slug}/"


def test_every_team_route_is_a_team_page() -> None:
    """A page under /console/t/<team>/ that is not a TeamPage would skip the membership check."""
    from django.urls import get_resolver

    from apps.dashboard.teams import TeamPage
    from tests.core.route_access import routes

    team_routes = [r for r in routes(get_resolver()) if r.pattern.startswith("console/t/")]
    assert team_routes
    strays = [r.label for r in team_routes if r.view is None or not issubclass(r.view, TeamPage)]
    assert not strays, strays
