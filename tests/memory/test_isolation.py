"""Tenant isolation: charlie never reaches alice's memory through any endpoint."""

from __future__ import annotations

import pytest

from apps.memory.models import MemoryItem

pytestmark = pytest.mark.django_db

ALICE_ITEMS = {
    "user_preference": {"theme": "dark", "language": "en"},
    "thread:thread_12345": {"title": "Project Planning", "participants": ["user_1"]},
    "secret/plan": "launch the rocket on friday",
}


@pytest.fixture
def alice_memory(alice, remember):
    remember(alice, ALICE_ITEMS)


def test_get_of_another_tenants_key_is_404(alice_memory, charlie_client):
    for key in ALICE_ITEMS:
        response = charlie_client.get(f"/memory/{key}")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_list_never_shows_another_tenants_keys(alice_memory, charlie_client, charlie, remember):
    remember(charlie, {"charlie_note": "mine"})
    keys = [entry["key"] for entry in charlie_client.get("/memory").json()["keys"]]
    assert keys == ["charlie_note"]
    assert charlie_client.get("/memory?prefix=user").json()["keys"] == []


def test_query_never_returns_another_tenants_items(alice_memory, charlie_client, charlie, remember):
    assert charlie_client.post("/memory/query", {"query": "theme settings"}, format="json").json() == {
        "results": []
    }
    remember(charlie, {"charlie_note": "rocket launch friday"})
    results = charlie_client.post("/memory/query", {"query": "rocket launch plan"}, format="json").json()
    assert [result["key"] for result in results["results"]] == ["charlie_note"]


def test_put_of_another_tenants_key_is_404_and_changes_nothing(alice_memory, charlie_client):
    response = charlie_client.put("/memory/user_preference", {"value": {"theme": "pink"}}, format="json")
    assert response.status_code == 404
    item = MemoryItem.objects.unscoped().get(key="user_preference")
    assert item.value == {"theme": "dark", "language": "en"}


def test_delete_of_another_tenants_key_is_404_and_keeps_it(alice_memory, charlie_client):
    assert charlie_client.delete("/memory/secret/plan").status_code == 404
    assert MemoryItem.objects.unscoped().filter(key="secret/plan").count() == 1


def test_post_with_the_same_key_makes_a_separate_item(
    alice_memory, alice, charlie, charlie_client, alice_client
):
    response = charlie_client.post("/memory", {"key": "user_preference", "value": "charlie's"}, format="json")
    assert response.status_code == 200
    assert alice_client.get("/memory/user_preference").json()["value"] == {"theme": "dark", "language": "en"}
    assert charlie_client.get("/memory/user_preference").json()["value"] == "charlie's"
    assert MemoryItem.objects.for_tenant(alice).count() == 3
    assert MemoryItem.objects.for_tenant(charlie).count() == 1
