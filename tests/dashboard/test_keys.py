"""The API keys page: admins and owners only; a key made with a scope picker, expiry and token cap,
its secret shown once; revoking it refuses the API at once; the plan's key cap; other teams' keys
are never seen or reached."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from apps.billing.models import Plan
from apps.dashboard.forms.keys import KeyCreateForm
from apps.tenants.models import ApiKey, Membership, Tenant
from apps.tenants.roles import ROLE_SCOPES
from apps.tenants.scopes import parse_scope, parse_scopes
from apps.tenants.services import api_key_create
from tests.conftest import SlopClient

pytestmark = pytest.mark.django_db


def keys_url(team: Tenant, rest: str = "") -> str:
    return f"/console/t/{team.slug}/keys{rest}"


def create(console: Client, team: Tenant, **fields: Any) -> Any:
    data = {"name": "support bot", "expiry": "never", **fields}
    return console.post(keys_url(team, "/new"), data)


def only_key(team: Tenant) -> ApiKey:
    return ApiKey.objects.for_tenant(team).get()


@pytest.mark.parametrize(("role", "status"), [("owner", 200), ("admin", 200), ("member", 403)])
def test_admins_and_owners_open_the_keys_pages(
    console_for: Callable[..., Client], alice: Tenant, role: str, status: int
) -> None:
    existing = api_key_create(tenant=alice, scopes="*", name="existing").api_key
    console = console_for(alice, role)
    for url in (keys_url(alice), keys_url(alice, "/new"), keys_url(alice, f"/{existing.prefix}/revoke")):
        response = console.get(url)
        assert response.status_code == status, url
        if status == 403:
            assert (
                b"You cannot open this page" in response.content
                and existing.prefix.encode() not in response.content
            )
    if status == 403:
        assert create(console, alice, preset="full").status_code == 403
        assert console.post(keys_url(alice, f"/{existing.prefix}/revoke")).status_code == 403
        existing.refresh_from_db()
        assert existing.revoked_at is None and ApiKey.objects.for_tenant(alice).count() == 1
        nav = console.get(f"/console/t/{alice.slug}/").content
        assert keys_url(alice).encode() not in nav  # not offered either


def test_the_form_is_labelled(console_for: Callable[..., Client], alice: Tenant) -> None:
    page = console_for(alice, "admin").get(keys_url(alice, "/new")).content.decode()
    for field in ("name", "preset", "advanced", "expires_on", "monthly_token_cap", "ident_memory"):
        assert f'for="id_{field}"' in page, field
    assert "chat.read,tools.calculator,memory.user.read" in page  # the seed's example, as a preset
    assert 'name="perm_memory"' in page and "csrfmiddlewaretoken" in page


def test_a_new_keys_secret_is_shown_once_and_works(console_for: Callable[..., Client], alice: Tenant) -> None:
    console = console_for(alice, "admin")
    response = create(console, alice, preset="memory-read", monthly_token_cap="5000")
    assert response.status_code == 302 and response["Location"] == keys_url(alice)
    key = only_key(alice)
    assert key.scopes == ["memory.read"] and key.monthly_token_cap == 5000 and key.expires_at is None
    assert key.created_by is not None and key.name == "support bot"
    page = console.get(keys_url(alice))
    body = page.content.decode()
    assert "it will not be shown again" in body and "no-store" in page["Cache-Control"]
    secret = body.split('id="new-key-secret" class="secret" value="', 1)[1].split('"', 1)[0]
    assert secret.startswith("slop_") and key.prefix in secret
    assert secret not in key.key_hash
    again = console.get(keys_url(alice)).content.decode()
    assert secret not in again and "will not be shown again" not in again
    assert key.prefix in again and "memory.read" in again and "active" in again
    api = SlopClient().with_key(secret)
    assert api.get("/memory").status_code == 200
    assert api.post("/memory", {"key": "x", "value": 1}, format="json").status_code == 403  # read only


def test_the_picker_and_advanced_scopes_combine(console_for: Callable[..., Client], alice: Tenant) -> None:
    console = console_for(alice, "owner")
    response = create(
        console,
        alice,
        perm_memory=["read", "write"],
        ident_memory="user, team",
        perm_tools=["safe"],
        perm_chat=["*"],
        advanced="tools.calculator.execute, resources.docs.read",
    )
    assert response.status_code == 302
    assert set(only_key(alice).scopes) == {
        "memory.user.read",
        "memory.team.read",
        "memory.user.write",
        "memory.team.write",
        "tools.safe.*",
        "chat.*",
        "tools.calculator.execute",
        "resources.docs.read",
    }


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"advanced": "memory.read, nonsense.read"}, "advanced", "unknown area &#x27;nonsense&#x27;"),
        ({"advanced": "memory.user.fly"}, "advanced", "unknown permission &#x27;fly&#x27;"),
        ({"perm_memory": ["read"], "ident_memory": "a*b"}, "ident_memory", "wildcard"),
        ({"ident_agents": "support"}, "ident_agents", "Tick what the key may do"),
        ({}, None, "Choose what the key may do"),
        ({"preset": "chat", "name": ""}, "name", "This field is required"),
        ({"preset": "chat", "expiry": "date"}, "expires_on", "Give the date"),
        (
            {"preset": "chat", "expiry": "date", "expires_on": "2001-01-01"},
            "expires_on",
            "The date has passed",
        ),
        ({"preset": "chat", "expiry": "forever"}, "expiry", "Select a valid choice"),
        ({"preset": "chat", "monthly_token_cap": "-5"}, "monthly_token_cap", "greater than or equal to 0"),
        ({"preset": "root"}, "preset", "Select a valid choice"),
    ],
)
def test_bad_input_shows_the_error_and_makes_no_key(
    console_for: Callable[..., Client], alice: Tenant, fields: dict[str, Any], field: str | None, words: str
) -> None:
    response = create(console_for(alice, "admin"), alice, **fields)
    assert response.status_code == 400
    body = response.content.decode()
    assert words in body, body[body.find("errorlist") - 200 : body.find("errorlist") + 400]
    if field is not None:
        assert response.context["form"].errors.get(field), response.context["form"].errors
    assert not ApiKey.objects.for_tenant(alice).exists()


def test_expiry_choices(console_for: Callable[..., Client], alice: Tenant) -> None:
    console = console_for(alice, "admin")
    before = timezone.now()
    create(console, alice, preset="chat", expiry="30", name="thirty")
    thirty = ApiKey.objects.for_tenant(alice).get(name="thirty")
    assert thirty.expires_at is not None
    assert before + timedelta(days=30) <= thirty.expires_at <= timezone.now() + timedelta(days=30)
    day = (timezone.now() + timedelta(days=10)).astimezone(UTC).date()
    create(console, alice, preset="chat", expiry="date", expires_on=day.isoformat(), name="dated")
    dated = ApiKey.objects.for_tenant(alice).get(name="dated")
    assert dated.expires_at == datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def test_the_plans_key_cap_is_a_form_error(console_for: Callable[..., Client], alice: Tenant) -> None:
    Plan.objects.filter(slug="free").update(included_api_keys=3)
    console = console_for(alice, "owner")
    revoked = api_key_create(tenant=alice, scopes="*", name="old").api_key
    revoked.revoked_at = timezone.now()
    revoked.save()
    for number in range(3):
        assert create(console, alice, preset="chat", name=f"key {number}").status_code == 302
    response = create(console, alice, preset="chat", name="one too many")
    assert response.status_code == 402
    assert b"Quota exceeded" in response.content and b"3 active API keys" in response.content
    assert b'role="alert"' in response.content
    assert not ApiKey.objects.for_tenant(alice).filter(name="one too many").exists()


def test_revoke_with_confirmation_refuses_the_key(console_for: Callable[..., Client], alice: Tenant) -> None:
    console = console_for(alice, "admin")
    issued = api_key_create(tenant=alice, scopes="memory.read", name="to revoke")
    api = SlopClient().with_key(issued.plaintext)
    assert api.get("/memory").status_code == 200
    confirm = console.get(keys_url(alice, f"/{issued.api_key.prefix}/revoke"))
    assert confirm.status_code == 200 and b"Revoke the key" in confirm.content
    assert api.get("/memory").status_code == 200  # opening the confirmation revokes nothing
    response = console.post(keys_url(alice, f"/{issued.api_key.prefix}/revoke"))
    assert response.status_code == 302
    issued.api_key.refresh_from_db()
    assert issued.api_key.revoked_at is not None
    assert api.get("/memory").status_code == 401
    listed = console.get(keys_url(alice)).content.decode()
    assert "revoked" in listed and f"/keys/{issued.api_key.prefix}/revoke" not in listed


def test_another_teams_keys_are_never_seen_or_reached(
    console_for: Callable[..., Client], alice: Tenant, charlie: Tenant
) -> None:
    console = console_for(alice, "owner")
    theirs = api_key_create(tenant=charlie, scopes="*", name="charlie-secret-bot")
    mine = api_key_create(tenant=alice, scopes="*", name="alice-bot").api_key
    for url in (
        keys_url(charlie),
        keys_url(charlie, "/new"),
        keys_url(charlie, f"/{theirs.api_key.prefix}/revoke"),
    ):
        assert console.get(url).status_code == 404, url
        assert console.post(url, {"name": "x", "preset": "full", "expiry": "never"}).status_code == 404, url
    assert console.get(keys_url(alice, f"/{theirs.api_key.prefix}/revoke")).status_code == 404
    assert console.post(keys_url(alice, f"/{theirs.api_key.prefix}/revoke")).status_code == 404
    theirs.api_key.refresh_from_db()
    assert theirs.api_key.revoked_at is None
    assert SlopClient().with_key(theirs.plaintext).get("/memory").status_code == 200
    assert not ApiKey.objects.for_tenant(charlie).exclude(pk=theirs.api_key.pk).exists()
    page = console.get(keys_url(alice)).content.decode()
    assert mine.prefix in page
    assert theirs.api_key.prefix not in page and "charlie-secret-bot" not in page


def test_a_new_secret_is_shown_only_on_its_own_teams_page(
    console_for: Callable[..., Client], make_member: Callable[..., Any], alice: Tenant, charlie: Tenant
) -> None:
    console = console_for(alice, "owner")
    user = console.get(keys_url(alice)).context["user"]
    make_member(charlie, "owner", username="second-team-owner")
    Membership.objects.for_tenant(charlie).create(tenant=charlie, user=user, role="owner")
    create(console, alice, preset="chat")
    other = console.get(keys_url(charlie)).content.decode()
    assert "will not be shown again" not in other
    assert "will not be shown again" in console.get(keys_url(alice)).content.decode()
    assert "will not be shown again" not in console.get(keys_url(alice)).content.decode()


def test_csrf_is_enforced_on_the_keys_forms(make_member: Callable[..., Any], alice: Tenant) -> None:
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(make_member(alice, "owner"))
    existing = api_key_create(tenant=alice, scopes="*", name="keep").api_key
    assert create(strict, alice, preset="full").status_code == 403
    assert strict.post(keys_url(alice, f"/{existing.prefix}/revoke")).status_code == 403
    existing.refresh_from_db()
    assert existing.revoked_at is None and ApiKey.objects.for_tenant(alice).count() == 1


def test_a_key_is_never_wider_than_its_maker() -> None:
    member = parse_scopes(ROLE_SCOPES["member"])
    form = KeyCreateForm(
        {"name": "x", "expiry": "never", "advanced": "memory.read, memory.user.write"}, granted=member
    )
    assert not form.is_valid()
    assert "You may not grant memory.user.write" in str(form.errors["advanced"])
    assert KeyCreateForm({"name": "x", "expiry": "never", "preset": "chat"}, granted=member).is_valid()
    full = KeyCreateForm({"name": "x", "expiry": "never", "preset": "full"}, granted=member)
    assert not full.is_valid() and "You may not grant *" in str(full.errors["preset"])


@pytest.mark.parametrize(
    ("held", "asked", "allowed"),
    [
        ("*", "billing.*", True),
        ("memory.read", "memory.user.read", True),
        ("memory.user.read", "memory.read", False),
        ("memory.user.read", "memory.user.prefs.read", True),
        ("memory.read", "memory.*", False),
        ("memory.*", "memory.read", True),
        ("tools.safe.*", "tools.safe.calculator", True),
        ("tools.safe.*", "tools.calculator.execute", False),
        ("tools.execute,tools.read", "tools.safe.*", True),
        ("chat.*", "*", False),
        ("chat.thread_a.read", "chat.thread_b.read", False),
    ],
)
def test_scope_sets_know_what_they_grant(held: str, asked: str, allowed: bool) -> None:
    assert parse_scopes(held).grants(parse_scope(asked)) is allowed
