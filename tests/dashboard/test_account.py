"""Accounts: sign-up (an account and a team on the free plan), sign-in by username or e-mail,
sign-out, password reset and change, another team, CSRF, and the console's 403 page."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client, RequestFactory, override_settings

from apps.billing.accounts import account_for
from apps.billing.models import BillingAccount
from apps.core.views import permission_denied
from apps.tenants.models import Membership, Tenant
from apps.tenants.teams import invitation_create
from tests.dashboard.conftest import PASSWORD

pytestmark = pytest.mark.django_db
User = get_user_model()

SIGNUP = {
    "username": "dana",
    "email": "Dana@Example.com",
    "password1": PASSWORD,
    "password2": PASSWORD,
    "team_name": "Dana's Lab",
}


def signed_in_user(client: Client) -> Any:
    return client.get("/console/account").context["user"]


def test_sign_up_makes_an_account_and_a_team_it_owns_on_the_free_plan(client: Client) -> None:
    page = client.get("/console/signup")
    assert page.status_code == 200
    for field in ("username", "email", "password1", "password2", "team_name"):
        assert f'for="id_{field}"'.encode() in page.content
    response = client.post("/console/signup", SIGNUP)
    assert response.status_code == 302
    user = User.objects.get(username="dana")
    assert user.email == "dana@example.com" and user.check_password(PASSWORD)
    membership = Membership.objects.unscoped().get(user=user)
    assert membership.role == "owner" and membership.tenant.name == "Dana's Lab"
    assert response["Location"] == f"/console/t/{membership.tenant.slug}/"
    assert BillingAccount.objects.for_tenant(membership.tenant).get().plan.slug == "free"
    home = client.get(response["Location"])  # signed in already
    assert home.status_code == 200 and b"Dana&#x27;s Lab" in home.content


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"password2": "something else entirely"}, b"The two password fields"),
        ({"password1": "short", "password2": "short"}, b"too short"),
        ({"email": "not-an-address"}, b"valid email"),
        ({"team_name": "   "}, b"This field is required"),
        ({"username": "bad name!"}, b"Enter a valid username"),
    ],
)
def test_bad_sign_up_shows_the_error_and_stores_nothing(
    client: Client, change: dict[str, str], error: bytes
) -> None:
    response = client.post("/console/signup", {**SIGNUP, **change})
    assert response.status_code == 400
    assert error in response.content
    assert not User.objects.exists() and not Tenant.objects.exists()


def test_an_address_signs_up_once(client: Client, make_member: Callable[..., Any], alice: Tenant) -> None:
    make_member(alice, "member", username="dana-old")  # dana-old@example.com
    response = client.post("/console/signup", {**SIGNUP, "email": "DANA-OLD@example.com"})
    assert response.status_code == 400 and b"exists: sign in instead" in response.content
    assert not User.objects.filter(username="dana").exists()
    assert Tenant.objects.count() == 1


@override_settings(SLOP_SIGNUP_OPEN=False)
def test_closed_sign_up_makes_nothing(
    client: Client, console_for: Callable[..., Client], alice: Tenant
) -> None:
    assert client.get("/console/signup").status_code == 403
    response = client.post("/console/signup", SIGNUP)
    assert response.status_code == 403 and b"Sign-up is closed" in response.content
    assert not User.objects.exists() and Tenant.objects.count() == 1
    assert b"/console/signup" not in client.get("/console/login").content
    console = console_for(alice, "owner")
    assert console.post("/console/teams/new", {"name": "Side project"}).status_code == 403
    assert Tenant.objects.count() == 1


def test_sign_in_by_username_or_e_mail(
    client: Client, make_member: Callable[..., Any], alice: Tenant
) -> None:
    user = make_member(alice, "member", username="erin")
    login = client.get("/console/login")
    assert b"/console/signup" in login.content and b"/console/password-reset" in login.content
    for name in ("erin", "ERIN@example.com"):
        fresh = Client()
        response = fresh.post("/console/login", {"username": name, "password": PASSWORD})
        assert response.status_code == 302, name
        assert signed_in_user(fresh) == user
    wrong = Client().post("/console/login", {"username": "erin@example.com", "password": "wrong password"})
    assert wrong.status_code == 200 and b"correct username and password" in wrong.content


def test_sign_out_is_a_post(console_for: Callable[..., Client], alice: Tenant) -> None:
    console = console_for(alice)
    page = console.get(f"/console/t/{alice.slug}/")
    assert b'action="/console/logout"' in page.content and b'method="post"' in page.content
    assert console.get("/console/logout").status_code == 405
    assert signed_in_user(console).is_authenticated
    assert console.post("/console/logout").status_code == 302
    assert console.get(f"/console/t/{alice.slug}/").status_code == 302  # to sign in


def test_password_reset_by_e_mail(client: Client, make_member: Callable[..., Any], alice: Tenant) -> None:
    user = make_member(alice, "member", username="fay")
    page = client.get("/console/password-reset")
    assert page.status_code == 200 and b'for="id_email"' in page.content
    response = client.post("/console/password-reset", {"email": "FAY@example.com"})
    assert response.status_code == 302 and response["Location"] == "/console/password-reset/sent"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["fay@example.com"]
    link = re.search(r"http://testserver(/console/reset/\S+)", mail.outbox[0].body)
    assert link, mail.outbox[0].body
    form = client.get(link.group(1), follow=True)
    assert form.status_code == 200 and b"Choose a new password" in form.content
    new_password = "a brand new passphrase 42"
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password}
    )
    assert done.status_code == 302 and done["Location"] == "/console/reset/done"
    user.refresh_from_db()
    assert user.check_password(new_password)
    assert b"does not work" in client.get(link.group(1), follow=True).content  # used once


def test_password_reset_for_an_unknown_address_says_the_same_and_sends_nothing(client: Client) -> None:
    response = client.post("/console/password-reset", {"email": "nobody@example.com"})
    assert response.status_code == 302 and response["Location"] == "/console/password-reset/sent"
    assert mail.outbox == []


def test_password_change(console_for: Callable[..., Client], alice: Tenant) -> None:
    console = console_for(alice)
    user = signed_in_user(console)
    wrong = console.post(
        "/console/account/password",
        {"old_password": "not it", "new_password1": "x" * 12 + "Yz9", "new_password2": "x" * 12 + "Yz9"},
    )
    assert wrong.status_code == 200 and b"incorrectly" in wrong.content
    new_password = "another good passphrase 7"
    response = console.post(
        "/console/account/password",
        {"old_password": PASSWORD, "new_password1": new_password, "new_password2": new_password},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new_password)
    assert signed_in_user(console).is_authenticated  # this session stays signed in


def test_create_another_team(console_for: Callable[..., Client], alice: Tenant) -> None:
    console = console_for(alice, "member")
    assert console.get("/console/teams/new").status_code == 200
    assert console.post("/console/teams/new", {"name": "  "}).status_code == 400
    assert Tenant.objects.count() == 1
    response = console.post("/console/teams/new", {"name": "Side project"})
    team = Tenant.objects.get(name="Side project")
    assert response["Location"] == f"/console/t/{team.slug}/"
    assert Membership.objects.for_tenant(team).get().role == "owner"
    assert account_for(team).plan.slug == "free"
    switcher = console.get(f"/console/t/{team.slug}/").content
    assert b"Side project" in switcher and alice.name.encode() in switcher


def test_csrf_is_enforced_on_the_account_forms(make_member: Callable[..., Any], alice: Tenant) -> None:
    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/console/signup", SIGNUP)
    assert response.status_code == 403
    assert b"This form has expired" in response.content  # the console's page, not Django's
    assert not User.objects.exists()
    user = make_member(alice, "owner")
    strict.force_login(user)
    assert strict.post("/console/teams/new", {"name": "Side project"}).status_code == 403
    assert strict.post("/console/logout").status_code == 403
    assert Tenant.objects.count() == 1
    # With the token from the page, the same form works.
    page = strict.get("/console/teams/new")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content)
    assert token
    ok = strict.post(
        "/console/teams/new", {"name": "Side project", "csrfmiddlewaretoken": token.group(1).decode()}
    )
    assert ok.status_code == 302


def test_the_403_is_a_page_in_the_console_and_json_on_slop_paths(
    console_for: Callable[..., Client], alice: Tenant
) -> None:
    response = console_for(alice, "member").get(f"/console/t/{alice.slug}/keys")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    assert b"You cannot open this page" in response.content and b"admin role" in response.content
    slop = permission_denied(RequestFactory().get("/memory"))
    assert slop.status_code == 403 and slop["Content-Type"].startswith("application/json")
    assert json.loads(slop.content) == {"error": "Forbidden", "code": "forbidden", "status": 403}


def _settings_in(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS, s.EMAIL_USE_SSL, "
        "s.SLOP_SIGNUP_OPEN)"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("EMAIL_", "SLOP_SIGNUP"))}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env={**base, "DJANGO_SETTINGS_MODULE": "slop_platform.settings", "SECRET_KEY": "k" * 40, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_e_mail_and_sign_up_settings_come_from_the_environment() -> None:
    development = _settings_in({"SLOP_DEBUG": "true"})
    assert development.stdout.split() == [
        "django.core.mail.backends.console.EmailBackend", "localhost", "587", "True", "False", "True"
    ]  # fmt: skip
    production = _settings_in(
        {"SLOP_DEBUG": "false", "EMAIL_HOST": "smtp.example.com", "EMAIL_PORT": "465",
         "EMAIL_USE_SSL": "true", "SLOP_SIGNUP_OPEN": "false"}
    )  # fmt: skip
    assert production.stdout.split() == [
        "django.core.mail.backends.smtp.EmailBackend", "smtp.example.com", "465", "False", "True", "False"
    ]  # fmt: skip
    both = _settings_in({"SLOP_DEBUG": "false", "EMAIL_USE_SSL": "true", "EMAIL_USE_TLS": "true"})
    assert both.returncode != 0 and "EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be true" in both.stderr
    loose = _settings_in({"SLOP_DEBUG": "false", "SLOP_SIGNUP_OPEN": "maybe"})
    assert loose.returncode != 0 and "SLOP_SIGNUP_OPEN must be true or false" in loose.stderr


@override_settings(SLOP_CONSOLE_AUTH_LIMIT_PER_MINUTE=2)
def test_failed_sign_ins_from_one_address_are_limited(make_member: Callable[..., Any], alice: Tenant) -> None:
    make_member(alice, "member", username="gil")
    guesser = Client(REMOTE_ADDR="192.0.2.41")
    for _ in range(2):
        assert guesser.post("/console/login", {"username": "gil", "password": "guess"}).status_code == 200
    limited = guesser.post("/console/login", {"username": "gil", "password": PASSWORD})  # right, but too late
    assert limited.status_code == 429 and int(limited["Retry-After"]) >= 1
    assert b"Too many attempts" in limited.content
    assert "_auth_user_id" not in guesser.session
    elsewhere = Client(REMOTE_ADDR="192.0.2.42")
    assert elsewhere.post("/console/login", {"username": "gil", "password": PASSWORD}).status_code == 302


@override_settings(SLOP_CONSOLE_AUTH_LIMIT_PER_MINUTE=1)
def test_sign_ups_and_reset_e_mails_from_one_address_are_limited(
    make_member: Callable[..., Any], alice: Tenant
) -> None:
    make_member(alice, "member", username="hal")
    visitor = Client(REMOTE_ADDR="192.0.2.51")
    assert visitor.post("/console/signup", SIGNUP).status_code == 302
    second = Client(REMOTE_ADDR="192.0.2.51").post(
        "/console/signup", {**SIGNUP, "username": "dana2", "email": "dana2@example.com"}
    )
    assert second.status_code == 429 and not User.objects.filter(username="dana2").exists()
    issued = invitation_create(tenant=alice, email="dana3@example.com", role="member", invited_by_id=None)
    invited = Client(REMOTE_ADDR="192.0.2.51").post(
        f"/console/invite/{issued.token}", {"username": "dana3", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert invited.status_code == 429 and invited["Retry-After"] and b"Too many attempts" in invited.content
    assert not User.objects.filter(username="dana3").exists()
    resetter = Client(REMOTE_ADDR="192.0.2.52")
    assert resetter.post("/console/password-reset", {"email": "hal@example.com"}).status_code == 302
    again = resetter.post("/console/password-reset", {"email": "hal@example.com"})
    assert again.status_code == 429 and b"Too many attempts" in again.content
    assert len(mail.outbox) == 1
