"""Scopes (PROTOCOL.md §3): memory.<key>.read / .write by prefix, applied to lists and queries too."""

from __future__ import annotations

import pytest

from apps.memory.models import MemoryItem

pytestmark = pytest.mark.django_db

ITEMS = {
    "user_preference": {"theme": "dark", "language": "en"},
    "user/profile": {"name": "Alice", "city": "Bristol"},
    "thread:thread_1": {"title": "Dark mode design review"},
    "billing": {"plan": "team", "theme": "dark invoices"},
}


@pytest.fixture
def stored(alice, remember):
    remember(alice, ITEMS)


def test_read_scope_by_prefix_for_get(stored, alice, client_for):
    client = client_for(alice, "memory.user.read")
    assert client.get("/memory/user_preference").status_code == 200
    assert client.get("/memory/user/profile").status_code == 200
    denied = client.get("/memory/billing")
    assert denied.status_code == 403
    assert denied.json()["required_scope"] == "memory.billing.read"
    assert denied.json()["permitted"] is False


def test_list_leaves_out_unreadable_keys(stored, alice, client_for):
    client = client_for(alice, "memory.user.read,memory.thread:.read")
    keys = sorted(entry["key"] for entry in client.get("/memory").json()["keys"])
    assert keys == ["thread:thread_1", "user/profile", "user_preference"]
    assert [e["key"] for e in client.get("/memory?prefix=user/").json()["keys"]] == ["user/profile"]
    assert client.get("/memory?prefix=bill").json()["keys"] == []


def test_query_leaves_out_unreadable_keys_and_still_fills_the_limit(stored, alice, client_for):
    client = client_for(alice, "memory.user.read")
    results = client.post("/memory/query", {"query": "dark theme", "limit": 10}, format="json").json()
    assert sorted(result["key"] for result in results["results"]) == ["user/profile", "user_preference"]


def test_query_with_key_prefix_outside_the_scope_is_empty(stored, alice, client_for):
    client = client_for(alice, "memory.user.read")
    response = client.post(
        "/memory/query", {"query": "dark", "filter": {"key_prefix": "billing"}}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"results": []}


def test_header_narrows_the_keys_scopes(stored, alice, client_for):
    client = client_for(alice, "memory.*", scope_header="memory.thread:.read")
    assert client.get("/memory/user_preference").status_code == 403
    results = client.post("/memory/query", {"query": "dark"}, format="json").json()["results"]
    assert [result["key"] for result in results] == ["thread:thread_1"]
    assert client.post("/memory", {"key": "thread:x", "value": 1}, format="json").status_code == 403


def test_no_memory_read_scope_at_all_is_403_for_list_and_query(stored, alice, client_for):
    client = client_for(alice, "chat.*,memory.write")
    assert client.get("/memory").status_code == 403
    response = client.post("/memory/query", {"query": "dark"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "scope_violation"


def test_writes_need_the_write_scope_for_the_key(stored, alice, client_for):
    client = client_for(alice, "memory.user.write,memory.read")
    assert client.post("/memory", {"key": "user_new", "value": 1}, format="json").status_code == 200
    response = client.post("/memory", {"key": "billing", "value": "free"}, format="json")
    assert response.status_code == 403
    assert response.json()["required_scope"] == "memory.billing.write"
    assert client.put("/memory/billing", {"value": "free"}, format="json").status_code == 403
    assert client.delete("/memory/billing").status_code == 403
    assert MemoryItem.objects.for_tenant(alice).get(key="billing").value == ITEMS["billing"]
    assert (
        client.put("/memory/user_preference", {"value": {"theme": "light"}}, format="json").status_code == 200
    )
    assert client.delete("/memory/user/profile").status_code == 200


def test_read_only_key_cannot_write(stored, alice, client_for):
    client = client_for(alice, "memory..read")
    assert client.get("/memory/billing").status_code == 200
    assert client.post("/memory", {"key": "x", "value": 1}, format="json").status_code == 403
    assert client.delete("/memory/billing").status_code == 403
