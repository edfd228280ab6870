"""The Memory page: browse, search by meaning, view, edit, create and delete — by role, per team."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from apps.memory.models import MemoryItem
from apps.memory.services import memory_item_store
from apps.tenants.models import Tenant

pytestmark = pytest.mark.django_db


def page(team: Tenant, name: str = "", **query: str) -> str:
    url = f"/console/t/{team.slug}/memory/{name}"
    return f"{url}?{urlencode(query)}" if query else url


def stored(team: Tenant, key: str) -> Any:
    item = MemoryItem.objects.for_tenant(team).filter(key=key).first()
    return None if item is None else item.value


@pytest.fixture
def memories(alice: Tenant, charlie: Tenant) -> None:
    memory_item_store(tenant=alice, key="user/theme", value={"theme": "dark", "font": "large"})
    memory_item_store(tenant=alice, key="user/language", value="The user speaks French")
    memory_item_store(tenant=alice, key="billing:plan", value={"plan": "team", "seats": 5})
    memory_item_store(tenant=charlie, key="charlie-secret/plan", value="Charlie's launch plan for Mars")


def test_a_member_browses_keys_by_prefix(
    console_for: Callable[..., Client], alice: Tenant, memories: None
) -> None:
    console = console_for(alice, "member")
    everything = console.get(page(alice)).content.decode()
    assert "user/theme" in everything and "billing:plan" in everything
    narrowed = console.get(page(alice, "keys", prefix="user/")).content.decode()
    assert "user/theme" in narrowed and "user/language" in narrowed and "billing:plan" not in narrowed
    empty = console.get(page(alice, "keys", prefix="nothing/")).content.decode()
    assert "No key starts with" in empty


def test_keys_are_paginated(console_for: Callable[..., Client], alice: Tenant) -> None:
    for index in range(30):
        memory_item_store(tenant=alice, key=f"note/{index:02d}", value=index)
    console = console_for(alice, "member")
    first = console.get(page(alice)).content.decode()
    assert first.count("<code>note/") == 25 and "Next page" in first
    next_link = first.split('hx-get="')[-1].split('"')[0].replace("&amp;", "&")
    second = console.get(next_link).content.decode()
    assert second.count("<code>note/") == 5 and "Next page" not in second and "First page" in second
    shown = set(re.findall(r"<code>(note/\d+)</code>", first + second))
    assert len(shown) == 30


def test_search_by_meaning_shows_scores(
    console_for: Callable[..., Client], alice: Tenant, memories: None
) -> None:
    console = console_for(alice, "member")
    fragment = console.get(page(alice, "search", q="which language does the user speak", limit="3"))
    assert fragment.status_code == 200
    body = fragment.content.decode()
    assert body.index("user/language") < body.index("billing:plan") if "billing:plan" in body else True
    assert 'data-score="' in body
    first_score = float(body.split('data-score="')[1].split('"')[0])
    assert 0 < first_score <= 1
    # The page itself answers ?q= too (no script).
    assert "user/language" in console.get(page(alice, q="language of the user", limit="3")).content.decode()


def test_search_narrowed_by_prefix(console_for: Callable[..., Client], alice: Tenant, memories: None) -> None:
    body = console_for(alice).get(page(alice, "search", q="plan", key_prefix="user/", limit="10"))
    assert "billing:plan" not in body.content.decode() and "user/" in body.content.decode()


def test_bad_search_input_is_an_error_not_a_crash(
    console_for: Callable[..., Client], alice: Tenant, memories: None
) -> None:
    console = console_for(alice)
    for query in (
        {"q": "   ", "limit": "3"},
        {"q": "x", "limit": "1000"},
        {"q": "x", "limit": "3", "min_score": "7"},
    ):
        response = console.get(page(alice, "search", **query))
        assert response.status_code == 200, query
        assert 'class="errorlist"' in response.content.decode(), query
    bad_cursor = console.get(page(alice, "keys", cursor="not-a-cursor"))
    assert bad_cursor.status_code == 200 and "Not a cursor" in bad_cursor.content.decode()


def test_a_value_is_shown_pretty_printed(
    console_for: Callable[..., Client], alice: Tenant, memories: None
) -> None:
    body = console_for(alice, "member").get(page(alice, "item", key="user/theme")).content.decode()
    assert "\n  &quot;theme&quot;: &quot;dark&quot;" in body  # indented JSON, one key per line
    assert '"font"' not in body  # escaped, never raw


def test_members_are_read_only(console_for: Callable[..., Client], alice: Tenant, memories: None) -> None:
    member = console_for(alice, "member")
    index = member.get(page(alice)).content.decode()
    item = member.get(page(alice, "item", key="user/theme")).content.decode()
    assert "New key" not in index
    assert "<textarea" not in item and "Delete" not in item
    assert member.get(page(alice, "new")).status_code == 403
    assert member.post(page(alice, "new"), {"key": "k", "value": "1"}).status_code == 403
    assert member.post(page(alice, "item", key="user/theme"), {"value": '"light"'}).status_code == 403
    assert member.get(page(alice, "delete", key="user/theme")).status_code == 403
    assert member.post(page(alice, "delete", key="user/theme")).status_code == 403
    assert stored(alice, "user/theme") == {"theme": "dark", "font": "large"}
    assert stored(alice, "k") is None


def test_an_admin_edits_a_value(console_for: Callable[..., Client], alice: Tenant, memories: None) -> None:
    admin = console_for(alice, "admin")
    form = admin.get(page(alice, "item", key="user/theme")).content.decode()
    assert "<textarea" in form and "Delete" in form
    response = admin.post(page(alice, "item", key="user/theme"), {"value": '{"theme": "light"}\r\n'})
    assert response.status_code == 302
    assert stored(alice, "user/theme") == {"theme": "light"}
    shown = admin.get(response["Location"]).content.decode()
    assert "Saved user/theme." in shown and "light" in shown


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{not json", "Not valid JSON"),
        ("null", "may not be null"),
        ("", "This field is required"),
        ("[NaN]", "must be valid JSON"),
    ],
)
def test_a_bad_value_is_refused_and_nothing_changes(
    console_for: Callable[..., Client], alice: Tenant, memories: None, value: str, message: str
) -> None:
    admin = console_for(alice, "admin")
    response = admin.post(page(alice, "item", key="user/theme"), {"value": value})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert stored(alice, "user/theme") == {"theme": "dark", "font": "large"}


def test_a_value_over_the_size_limit_is_refused(
    console_for: Callable[..., Client], alice: Tenant, memories: None, settings: Any
) -> None:
    settings.SLOP_MEMORY_MAX_VALUE_BYTES = 100
    response = console_for(alice, "owner").post(
        page(alice, "item", key="user/theme"), {"value": json.dumps("x" * 200)}
    )
    assert response.status_code == 400 and "at most 100 bytes" in response.content.decode()
    assert stored(alice, "user/theme") == {"theme": "dark", "font": "large"}


def test_an_admin_creates_a_key(console_for: Callable[..., Client], alice: Tenant, memories: None) -> None:
    admin = console_for(alice, "admin")
    response = admin.post(page(alice, "new"), {"key": "team/motto", "value": '"Ship it"'})
    assert response.status_code == 302
    assert stored(alice, "team/motto") == "Ship it"
    # Found by the next search (read-your-writes, as POST /memory/query).
    assert "team/motto" in admin.get(page(alice, "search", q="motto of the team", limit="3")).content.decode()


def test_creating_refuses_bad_keys_and_existing_ones(
    console_for: Callable[..., Client], alice: Tenant, memories: None
) -> None:
    admin = console_for(alice, "admin")
    exists = admin.post(page(alice, "new"), {"key": "user/theme", "value": '"overwritten?"'})
    assert exists.status_code == 400 and "Exists already" in exists.content.decode()
    assert stored(alice, "user/theme") == {"theme": "dark", "font": "large"}
    control = admin.post(page(alice, "new"), {"key": "bad\x01key", "value": "1"})
    assert control.status_code == 400 and "control characters" in control.content.decode()
    long_key = admin.post(page(alice, "new"), {"key": "k" * 513, "value": "1"})
    assert long_key.status_code == 400
    assert MemoryItem.objects.for_tenant(alice).count() == 3


def test_an_owner_deletes_after_confirming(
    console_for: Callable[..., Client], alice: Tenant, memories: None
) -> None:
    owner = console_for(alice, "owner")
    confirm = owner.get(page(alice, "delete", key="billing:plan"))
    assert confirm.status_code == 200 and "cannot be undone" in confirm.content.decode()
    assert stored(alice, "billing:plan") is not None  # asking deletes nothing
    assert owner.post(page(alice, "delete", key="billing:plan")).status_code == 302
    assert stored(alice, "billing:plan") is None
    assert owner.post(page(alice, "delete", key="billing:plan")).status_code == 404


def test_writes_need_the_csrf_token(make_member: Callable[..., Any], alice: Tenant, memories: None) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(make_member(alice, "owner"))
    assert browser.post(page(alice, "item", key="user/theme"), {"value": '"light"'}).status_code == 403
    assert browser.post(page(alice, "delete", key="user/theme")).status_code == 403
    assert browser.post(page(alice, "new"), {"key": "x", "value": "1"}).status_code == 403
    assert stored(alice, "user/theme") == {"theme": "dark", "font": "large"} and stored(alice, "x") is None


def test_another_team_never_sees_the_keys(
    console_for: Callable[..., Client], alice: Tenant, charlie: Tenant, memories: None
) -> None:
    owner = console_for(alice, "owner")
    # Charlie's team's pages are a 404 for alice's owner.
    for url in (
        page(charlie),
        page(charlie, "keys"),
        page(charlie, "search", q="plan", limit="5"),
        page(charlie, "item", key="charlie-secret/plan"),
        page(charlie, "new"),
    ):
        assert owner.get(url).status_code == 404, url
    assert owner.post(page(charlie, "delete", key="charlie-secret/plan")).status_code == 404
    # Charlie's key through alice's own pages: absent from lists and searches, 404 when named.
    listing = (
        owner.get(page(alice)).content.decode()
        + owner.get(page(alice, "keys", prefix="charlie")).content.decode()
    )
    search = owner.get(page(alice, "search", q="launch plan for Mars", limit="50")).content.decode()
    assert "charlie-secret" not in listing and "charlie-secret" not in search and "Mars" not in search
    assert owner.get(page(alice, "item", key="charlie-secret/plan")).status_code == 404
    assert owner.post(page(alice, "item", key="charlie-secret/plan"), {"value": "1"}).status_code == 404
    assert owner.post(page(alice, "delete", key="charlie-secret/plan")).status_code == 404
    assert stored(charlie, "charlie-secret/plan") == "Charlie's launch plan for Mars"
