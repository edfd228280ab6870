"""The members page: owners only; invitations by e-mail and accepting them; roles; removals; the
plan's seat cap; a team always keeps an owner; other teams' people are never seen or reached."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client, override_settings
from django.utils import timezone

from apps.billing.models import Plan
from apps.tenants.models import Invitation, Membership, Tenant
from apps.tenants.teams import invitation_create
from tests.dashboard.conftest import PASSWORD

pytestmark = pytest.mark.django_db
User = get_user_model()


def members_url(team: Tenant, rest: str = "") -> str:
    return f"/console/t/{team.slug}/members{rest}"


def invite(console: Client, team: Tenant, email: str, role: str = "member") -> Any:
    return console.post(members_url(team, "/invite"), {"email": email, "role": role})


def link_in(message: Any) -> str:
    found = re.search(r"http://testserver(/console/invite/[A-Za-z0-9_-]+)", message.body)
    assert found, message.body
    return found.group(1)


def membership(team: Tenant, user: Any) -> Membership | None:
    return Membership.objects.for_tenant(team).filter(user=user).first()


@pytest.mark.parametrize(("role", "status"), [("owner", 200), ("admin", 403), ("member", 403)])
def test_only_owners_open_the_members_page(
    console_for: Callable[..., Client], alice: Tenant, role: str, status: int
) -> None:
    console = console_for(alice, role)
    assert console.get(members_url(alice)).status_code == status
    target = Membership.objects.for_tenant(alice).first()
    assert target is not None
    for url, data in [
        (members_url(alice, "/invite"), {"email": "x@example.com", "role": "owner"}),
        (members_url(alice, f"/{target.pk}/role"), {f"m{target.pk}-role": "owner"}),
        (members_url(alice, f"/{target.pk}/remove"), {}),
    ]:
        assert console.post(url, data).status_code in ((302, 400, 409) if status == 200 else (403,)), url
    if status == 403:
        assert not Invitation.objects.for_tenant(alice).exists()
        target.refresh_from_db()
        assert target.role == role  # unchanged


def test_the_page_lists_members_with_roles(
    console_for: Callable[..., Client], make_member: Callable[..., Any], alice: Tenant
) -> None:
    console = console_for(alice, "owner")
    make_member(alice, "admin", username="gus")
    page = console.get(members_url(alice)).content.decode()
    assert "owner-alice-team" in page and "gus@example.com" in page
    assert 'value="admin" selected' in page
    assert "Send invitation" in page and 'for="id_email"' in page


def test_invite_by_e_mail_and_accept_signed_in(
    console_for: Callable[..., Client], make_member: Callable[..., Any], alice: Tenant, charlie: Tenant
) -> None:
    owner = console_for(alice, "owner")
    response = invite(owner, alice, "Hana@Example.com", "admin")
    assert response.status_code == 302
    invitation = Invitation.objects.for_tenant(alice).get()
    assert invitation.email == "hana@example.com" and invitation.role == "admin"
    assert invitation.accepted_at is None and invitation.expires_at > timezone.now() + timedelta(days=6)
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["hana@example.com"]
    assert "Alice Team" in mail.outbox[0].subject
    link = link_in(mail.outbox[0])
    token = link.rsplit("/", 1)[1]
    assert token not in invitation.token_hash  # only a hash is stored
    listed = owner.get(members_url(alice)).content.decode()
    assert "hana@example.com" in listed and "pending" in listed

    hana = make_member(charlie, "member", username="hana")  # has an account, in another team
    guest = Client()
    guest.force_login(hana)
    page = guest.get(link)
    assert page.status_code == 200 and "Join Alice Team" in page.content.decode()
    joined = guest.post(link)
    assert joined.status_code == 302 and joined["Location"] == f"/console/t/{alice.slug}/"
    assert membership(alice, hana).role == "admin"  # type: ignore[union-attr]
    invitation.refresh_from_db()
    assert invitation.accepted_at is not None and invitation.accepted_by == hana
    # Used: refused, and nothing changes.
    again = guest.post(link)
    assert again.status_code == 410 and b"already been used" in again.content
    assert Membership.objects.for_tenant(alice).filter(user=hana).count() == 1


def test_accepting_with_a_new_account(console_for: Callable[..., Client], alice: Tenant) -> None:
    invite(console_for(alice, "owner"), alice, "ivy@example.com")
    link = link_in(mail.outbox[0])
    visitor = Client()
    page = visitor.get(link).content.decode()
    assert "Sign in to accept" in page and "/console/login?next=" in page and 'for="id_password1"' in page
    bad = visitor.post(link, {"username": "ivy", "password1": PASSWORD, "password2": "different"})
    assert bad.status_code == 400 and not User.objects.filter(username="ivy").exists()
    response = visitor.post(link, {"username": "ivy", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302
    ivy = User.objects.get(username="ivy")
    assert ivy.email == "ivy@example.com"
    assert membership(alice, ivy).role == "member"  # type: ignore[union-attr]
    assert visitor.get(f"/console/t/{alice.slug}/").status_code == 200  # signed in


@override_settings(SLOP_SIGNUP_OPEN=False)
def test_an_invitation_works_while_sign_up_is_closed(
    console_for: Callable[..., Client], alice: Tenant
) -> None:
    invite(console_for(alice, "owner"), alice, "jo@example.com")
    response = Client().post(
        link_in(mail.outbox[0]), {"username": "jo", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert response.status_code == 302
    assert membership(alice, User.objects.get(username="jo")) is not None


def test_expired_withdrawn_and_made_up_links_are_refused(
    console_for: Callable[..., Client], make_member: Callable[..., Any], alice: Tenant
) -> None:
    owner = console_for(alice, "owner")
    invite(owner, alice, "kim@example.com")
    invite(owner, alice, "lee@example.com")
    expired_link, withdrawn_link = link_in(mail.outbox[0]), link_in(mail.outbox[1])
    Invitation.objects.for_tenant(alice).filter(email="kim@example.com").update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    withdrawn = Invitation.objects.for_tenant(alice).get(email="lee@example.com")
    assert owner.post(f"/console/t/{alice.slug}/invitations/{withdrawn.pk}/withdraw").status_code == 302
    assert not Invitation.objects.for_tenant(alice).filter(pk=withdrawn.pk).exists()
    user = make_member(Tenant.objects.create(slug="elsewhere", name="Elsewhere"), "member", username="kim")
    guest = Client()
    guest.force_login(user)
    for link, status, words in [
        (expired_link, 410, b"has expired"),
        (withdrawn_link, 404, b"not valid"),
        ("/console/invite/made-up-token", 404, b"not valid"),
    ]:
        for response in (guest.get(link), guest.post(link)):
            assert response.status_code == status and words in response.content, link
    assert membership(alice, user) is None


def test_resend_replaces_the_link(console_for: Callable[..., Client], alice: Tenant) -> None:
    owner = console_for(alice, "owner")
    invite(owner, alice, "max@example.com")
    old_link = link_in(mail.outbox[0])
    invitation = Invitation.objects.for_tenant(alice).get()
    assert owner.post(f"/console/t/{alice.slug}/invitations/{invitation.pk}/resend").status_code == 302
    assert len(mail.outbox) == 2
    new_link = link_in(mail.outbox[1])
    assert new_link != old_link
    assert Client().get(old_link).status_code == 404
    assert Client().get(new_link).status_code == 200


@pytest.mark.parametrize(
    ("email", "role", "words", "status"),
    [
        ("not an address", "member", b"valid email", 400),
        ("", "member", b"required", 400),
        ("ok@example.com", "superuser", b"Select a valid choice", 400),
        ("owner-alice-team@EXAMPLE.com", "member", b"already a member", 409),
    ],
)
def test_bad_invitations_show_the_error_and_store_nothing(
    console_for: Callable[..., Client], alice: Tenant, email: str, role: str, words: bytes, status: int
) -> None:
    response = invite(console_for(alice, "owner"), alice, email, role)
    assert response.status_code == status and words in response.content
    assert 'id="id_email"' in response.content.decode()  # the page, with the form
    assert not Invitation.objects.for_tenant(alice).exists() and mail.outbox == []


def test_inviting_an_address_twice_is_refused(console_for: Callable[..., Client], alice: Tenant) -> None:
    owner = console_for(alice, "owner")
    invite(owner, alice, "ned@example.com")
    response = invite(owner, alice, "NED@example.com", "admin")
    assert response.status_code == 409 and b"already invited" in response.content
    assert Invitation.objects.for_tenant(alice).get().role == "member"


def test_the_plans_seat_cap_is_a_form_error(
    console_for: Callable[..., Client], make_member: Callable[..., Any], alice: Tenant
) -> None:
    Plan.objects.filter(slug="free").update(included_members=3)
    owner = console_for(alice, "owner")
    make_member(alice, "member", username="ola")
    assert invite(owner, alice, "pat@example.com").status_code == 302  # takes the third seat
    response = invite(owner, alice, "quin@example.com")
    assert response.status_code == 402
    assert b"Quota exceeded" in response.content and b"3 members" in response.content
    assert b'role="alert"' in response.content
    assert list(Invitation.objects.for_tenant(alice).values_list("email", flat=True)) == ["pat@example.com"]
    # Accepting is checked too: a seat taken meanwhile leaves no room for the invitation.
    make_member(alice, "member", username="ray")
    visitor = Client()
    refused = visitor.post(
        link_in(mail.outbox[0]), {"username": "pat", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert refused.status_code == 402 and b"Quota exceeded" in refused.content
    assert not User.objects.filter(username="pat").exists()  # the new account rolled back too
    assert Invitation.objects.for_tenant(alice).get().accepted_at is None


def test_open_invitations_hold_their_seats_and_may_still_be_accepted(
    console_for: Callable[..., Client],
    make_member: Callable[..., Any],
    alice: Tenant,
    alice_client: Any,
) -> None:
    Plan.objects.filter(slug="free").update(included_members=5)
    owner = console_for(alice, "owner")
    for name in ("ann", "bob", "cid"):
        make_member(alice, "member", username=name)
    assert invite(owner, alice, "dee@example.com").status_code == 302  # 4 members + 1 invitation

    page = owner.get(members_url(alice)).content.decode()
    assert "4 members and 1 open invitation: 5 of the 5 seats the plan includes" in page
    assert alice_client.get("/billing").json()["used"]["members"] == 5
    refused = invite(owner, alice, "eve@example.com")
    assert refused.status_code == 402 and "5 of the 5 members" in refused.content.decode()
    assert not Invitation.objects.for_tenant(alice).filter(email="eve@example.com").exists()

    joined = Client().post(
        link_in(mail.outbox[0]), {"username": "dee", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert joined.status_code == 302, joined.content
    assert membership(alice, User.objects.get(username="dee")) is not None
    assert "5 members: 5 of the 5 seats" in owner.get(members_url(alice)).content.decode()
    assert alice_client.get("/billing").json()["used"]["members"] == 5
    # Withdrawn or expired invitations hold no seat.
    Membership.objects.for_tenant(alice).filter(user__username="cid").delete()
    assert invite(owner, alice, "eve@example.com").status_code == 302
    Invitation.objects.for_tenant(alice).filter(email="eve@example.com").update(expires_at=timezone.now())
    assert alice_client.get("/billing").json()["used"]["members"] == 4


def test_roles_change_and_a_team_keeps_an_owner(
    console_for: Callable[..., Client], make_member: Callable[..., Any], alice: Tenant
) -> None:
    owner = console_for(alice, "owner")
    me = Membership.objects.for_tenant(alice).get(role="owner")
    sam = Membership.objects.for_tenant(alice).get(user=make_member(alice, "admin", username="sam"))
    assert owner.post(members_url(alice, f"/{sam.pk}/role"), {f"m{sam.pk}-role": "member"}).status_code == 302
    sam.refresh_from_db()
    assert sam.role == "member"
    bad = owner.post(members_url(alice, f"/{sam.pk}/role"), {f"m{sam.pk}-role": "emperor"})
    assert bad.status_code == 400 and b"Choose a role" in bad.content
    sam.refresh_from_db()
    assert sam.role == "member"
    last = owner.post(members_url(alice, f"/{me.pk}/role"), {f"m{me.pk}-role": "admin"})
    assert last.status_code == 409 and b"at least one owner" in last.content
    me.refresh_from_db()
    assert me.role == "owner"
    # With a second owner, the first may step down (and no longer sees the page).
    assert owner.post(members_url(alice, f"/{sam.pk}/role"), {f"m{sam.pk}-role": "owner"}).status_code == 302
    stepped = owner.post(members_url(alice, f"/{me.pk}/role"), {f"m{me.pk}-role": "admin"})
    assert stepped.status_code == 302 and stepped["Location"] == f"/console/t/{alice.slug}/"
    assert owner.get(members_url(alice)).status_code == 403


def test_remove_a_member_but_never_the_last_owner(
    console_for: Callable[..., Client], make_member: Callable[..., Any], alice: Tenant
) -> None:
    owner = console_for(alice, "owner")
    me = Membership.objects.for_tenant(alice).get(role="owner")
    tia = make_member(alice, "member", username="tia")
    tia_row = membership(alice, tia)
    assert tia_row is not None
    confirm = owner.get(members_url(alice, f"/{tia_row.pk}/remove"))
    assert confirm.status_code == 200 and b"Remove tia?" in confirm.content
    assert owner.post(members_url(alice, f"/{tia_row.pk}/remove")).status_code == 302
    assert membership(alice, tia) is None
    assert User.objects.filter(username="tia").exists()  # the account stays
    refused = owner.post(members_url(alice, f"/{me.pk}/remove"))
    assert refused.status_code == 409 and b"at least one owner" in refused.content
    assert Membership.objects.for_tenant(alice).filter(pk=me.pk).exists()


def test_another_teams_people_are_never_seen_or_reached(
    console_for: Callable[..., Client], make_member: Callable[..., Any], alice: Tenant, charlie: Tenant
) -> None:
    owner = console_for(alice, "owner")
    uma = make_member(charlie, "admin", username="uma-charlie")
    uma_row = membership(charlie, uma)
    assert uma_row is not None
    theirs = invitation_create(
        tenant=charlie, email="secret-hire@example.com", role="member", invited_by_id=None
    )
    # Team B's pages: 404, whatever the id.
    for url in [
        members_url(charlie),
        members_url(charlie, "/invite"),
        members_url(charlie, f"/{uma_row.pk}/role"),
        members_url(charlie, f"/{uma_row.pk}/remove"),
        f"/console/t/{charlie.slug}/invitations/{theirs.invitation.pk}/resend",
        f"/console/t/{charlie.slug}/invitations/{theirs.invitation.pk}/withdraw",
    ]:
        assert owner.get(url).status_code == 404, url
        assert (
            owner.post(url, {f"m{uma_row.pk}-role": "member", "email": "x@example.com"}).status_code == 404
        ), url
    # Team B's rows through team A's URLs: 404 too.
    for url, data in [
        (members_url(alice, f"/{uma_row.pk}/role"), {f"m{uma_row.pk}-role": "member"}),
        (members_url(alice, f"/{uma_row.pk}/remove"), {}),
        (f"/console/t/{alice.slug}/invitations/{theirs.invitation.pk}/resend", {}),
        (f"/console/t/{alice.slug}/invitations/{theirs.invitation.pk}/withdraw", {}),
    ]:
        assert owner.post(url, data).status_code == 404, url
    assert owner.get(members_url(alice, f"/{uma_row.pk}/remove")).status_code == 404
    uma_row.refresh_from_db()
    assert uma_row.role == "admin"
    assert Invitation.objects.for_tenant(charlie).filter(pk=theirs.invitation.pk, accepted_at=None).exists()
    assert mail.outbox == []
    page = owner.get(members_url(alice)).content.decode()
    assert "uma-charlie" not in page and "secret-hire" not in page and charlie.name not in page


def test_a_token_of_team_b_joins_team_b_only(
    console_for: Callable[..., Client], make_member: Callable[..., Any], alice: Tenant, charlie: Tenant
) -> None:
    theirs = invitation_create(tenant=charlie, email="vic@example.com", role="admin", invited_by_id=None)
    vic = make_member(alice, "member", username="vic")
    guest = Client()
    guest.force_login(vic)
    assert guest.post(f"/console/invite/{theirs.token}").status_code == 302
    assert membership(alice, vic).role == "member"  # type: ignore[union-attr]  # unchanged
    assert membership(charlie, vic).role == "admin"  # type: ignore[union-attr]
    assert Membership.objects.for_tenant(alice).count() == 1


def test_csrf_is_enforced_on_the_members_forms(make_member: Callable[..., Any], alice: Tenant) -> None:
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(make_member(alice, "owner"))
    me = Membership.objects.for_tenant(alice).get()
    assert invite(strict, alice, "wes@example.com").status_code == 403
    assert strict.post(members_url(alice, f"/{me.pk}/remove")).status_code == 403
    assert not Invitation.objects.for_tenant(alice).exists()
    assert Membership.objects.for_tenant(alice).filter(pk=me.pk).exists()
    other = invitation_create(tenant=alice, email="xu@example.com", role="member", invited_by_id=None)
    guest = Client(enforce_csrf_checks=True)
    assert (
        guest.post(f"/console/invite/{other.token}", {"username": "xu", "password1": PASSWORD}).status_code
        == 403
    )
    assert not User.objects.filter(username="xu").exists()


def test_any_member_may_leave_but_not_the_last_owner(
    console_for: Callable[..., Client], make_member: Callable[..., Any], alice: Tenant, charlie: Tenant
) -> None:
    owner = console_for(alice, "owner")
    member = console_for(alice, "member")
    assert b"/leave" in member.get("/console/account").content
    confirm = member.get(f"/console/t/{alice.slug}/leave")
    assert confirm.status_code == 200 and b"Leave Alice Team?" in confirm.content
    assert member.post(f"/console/t/{alice.slug}/leave")["Location"] == "/console/"
    assert member.get(f"/console/t/{alice.slug}/").status_code == 404
    refused = owner.post(f"/console/t/{alice.slug}/leave")
    assert refused.status_code == 409 and b"at least one owner" in refused.content
    assert Membership.objects.for_tenant(alice).filter(role="owner").exists()
    assert owner.post(f"/console/t/{charlie.slug}/leave").status_code == 404
