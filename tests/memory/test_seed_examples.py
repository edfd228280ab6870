"""The seed's memory examples (slop-readme-latest.md), request and response shapes verbatim."""

from __future__ import annotations

import pytest

from apps.memory.models import MemoryItem

pytestmark = pytest.mark.django_db

THREAD_VALUE = {
    "title": "Project Planning",
    "participants": ["user_1", "user_2"],
    "tags": ["project", "planning", "roadmap"],
    "status": "active",
}

UNRELATED = {
    "search_history": {"recent": ["best pizza near me", "flight prices to Lisbon"]},
    "shipping_address": {"street": "12 Harbour Road", "city": "Bristol", "postcode": "BS1 4RB"},
    "favorite_books": ["Dune", "The Left Hand of Darkness"],
    "last_invoice": {"number": "INV-2041", "amount": 129.5, "currency": "EUR"},
    "thread:thread_999": {"title": "Holiday rota", "participants": ["user_7"], "status": "closed"},
}


def test_store_get_update_delete_like_the_seed(alice_client):
    response = alice_client.post(
        "/memory", {"key": "user_preference", "value": {"theme": "dark", "language": "en"}}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"status": "stored"}

    got = alice_client.get("/memory/user_preference").json()
    assert got["key"] == "user_preference"
    assert got["value"] == {"theme": "dark", "language": "en"}
    assert got["created_at"].endswith("Z") and got["updated_at"].endswith("Z")

    listed = alice_client.get("/memory").json()
    assert [entry["key"] for entry in listed["keys"]] == ["user_preference"]
    assert listed["next_cursor"] is None

    updated = alice_client.put(
        "/memory/user_preference", {"value": {"theme": "light", "language": "en"}}, format="json"
    )
    assert updated.status_code == 200
    assert updated.json() == {"status": "updated", "previous_value": {"theme": "dark", "language": "en"}}
    assert alice_client.get("/memory/user_preference").json()["value"] == {"theme": "light", "language": "en"}

    deleted = alice_client.delete("/memory/user_preference")
    assert deleted.json() == {"status": "deleted"}
    missing = alice_client.get("/memory/user_preference")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": "Memory key not found: user_preference",
        "code": "not_found",
        "status": 404,
    }


def test_theme_question_finds_user_preference_first(alice_client):
    for key, value in UNRELATED.items():
        alice_client.post("/memory", {"key": key, "value": value}, format="json")
    alice_client.post(
        "/memory", {"key": "user_preference", "value": {"theme": "dark", "language": "en"}}, format="json"
    )

    response = alice_client.post(
        "/memory/query", {"query": "What theme settings do I have?", "limit": 1}, format="json"
    )

    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 1
    assert results[0]["key"] == "user_preference"
    assert results[0]["value"] == {"theme": "dark", "language": "en"}
    assert 0 < results[0]["score"] <= 1


def test_thread_metadata_examples(alice_client):
    for key, value in UNRELATED.items():
        alice_client.post("/memory", {"key": key, "value": value}, format="json")
    stored = alice_client.post(
        "/memory", {"key": "thread:thread_12345", "value": THREAD_VALUE}, format="json"
    )
    assert stored.json() == {"status": "stored"}

    found = alice_client.post(
        "/memory/query",
        {"query": "project planning threads with user_1", "filter": {"key_prefix": "thread:"}},
        format="json",
    ).json()["results"]
    assert [result["key"] for result in found] == ["thread:thread_12345", "thread:thread_999"]
    assert found[0]["value"] == THREAD_VALUE
    assert found[0]["score"] > found[1]["score"]

    new_value = {
        "title": "Project Planning",
        "participants": ["user_1", "user_2", "user_3"],
        "tags": ["project", "planning", "roadmap", "active"],
        "status": "in_progress",
    }
    updated = alice_client.put("/memory/thread:thread_12345", {"value": new_value}, format="json")
    assert updated.json() == {"status": "updated", "previous_value": THREAD_VALUE}
    assert alice_client.get("/memory/thread:thread_12345").json()["value"] == new_value
    item = MemoryItem.objects.unscoped().get(key="thread:thread_12345")
    assert "user_3" in item.embedding_text  # the vector follows the new value
