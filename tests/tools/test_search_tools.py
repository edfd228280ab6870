"""The search built-ins search within the caller's own scopes and tenant, and only synchronously."""

from __future__ import annotations

import pytest

from apps.memory.services import memory_item_store
from apps.resources.services import resource_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def alices_resources(alice) -> None:
    resource_create(
        tenant=alice,
        resource_id="notes/mars-101",
        title="Mars 101",
        content="Mars is the fourth planet from the Sun; its red colour comes from iron oxide.",
    )
    resource_create(
        tenant=alice,
        resource_id="private/mars-budget",
        title="Mars mission budget",
        content="The Mars mission budget is confidential.",
    )


def test_resource_search_finds_only_readable_resources(alices_resources, client_for, alice) -> None:
    everything = client_for(alice).post("/tools/resource_search", {"query": "mars"}, format="json")
    assert everything.status_code == 200
    assert {hit["id"] for hit in everything.json()["result"]} == {"notes/mars-101", "private/mars-budget"}
    narrowed = client_for(alice, "tools.safe.*,resources.notes.read").post(
        "/tools/resource_search", {"query": "mars", "limit": 5}, format="json"
    )
    assert [hit["id"] for hit in narrowed.json()["result"]] == ["notes/mars-101"]
    assert narrowed.json()["result"][0]["snippet"]


def test_resource_search_never_crosses_tenants(alices_resources, charlie_client) -> None:
    response = charlie_client.post("/tools/resource_search", {"query": "mars"}, format="json")
    assert response.status_code == 200 and response.json() == {"result": []}


def test_resource_search_validates_and_refuses_background_runs(alices_resources, alice_client) -> None:
    assert alice_client.post("/tools/resource_search", {}, format="json").status_code == 400
    assert (
        alice_client.post("/tools/resource_search", {"query": "x", "limit": 99}, format="json").status_code
        == 400
    )
    queued = alice_client.post("/tools/resource_search?async=true", {"query": "mars"}, format="json")
    assert queued.status_code == 400 and "synchronously" in queued.json()["error"]


@pytest.fixture
def alices_memory(alice) -> None:
    memory_item_store(tenant=alice, key="user_preference", value={"theme": "dark", "language": "en"})
    memory_item_store(tenant=alice, key="thread:thread_1", value={"title": "Colour schemes and themes"})


def test_memory_search_finds_only_readable_keys(alices_memory, client_for, alice) -> None:
    everything = client_for(alice).post(
        "/tools/memory_search", {"query": "What theme settings do I have?"}, format="json"
    )
    assert everything.status_code == 200
    assert everything.json()["result"][0]["key"] == "user_preference"
    narrowed = client_for(alice, "tools.safe.*,memory.thread:.read").post(
        "/tools/memory_search", {"query": "theme"}, format="json"
    )
    assert [hit["key"] for hit in narrowed.json()["result"]] == ["thread:thread_1"]


def test_memory_search_never_crosses_tenants(alices_memory, charlie_client) -> None:
    response = charlie_client.post("/tools/memory_search", {"query": "theme"}, format="json")
    assert response.status_code == 200 and response.json() == {"result": []}
