"""GET /memory pagination and prefixes; POST /memory/query ordering, limits, scores, read-your-writes."""

from __future__ import annotations

from urllib.parse import quote

import pytest

pytestmark = pytest.mark.django_db


def test_list_is_newest_first_and_pages_with_a_cursor(alice, alice_client, remember):
    remember(alice, {f"note/{index:02d}": index for index in range(7)})
    seen = []
    cursor = None
    while True:
        url = "/memory?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = alice_client.get(url).json()
        assert len(page["keys"]) <= 3
        seen.extend(entry["key"] for entry in page["keys"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"note/{index:02d}" for index in reversed(range(7))]


def test_list_prefix_takes_keys_with_special_characters_literally(alice, alice_client, remember):
    remember(alice, {"a_b": 1, "axb": 2, "a%c": 3, "a%cd": 4, "thread:1": 5, "threadx": 6})

    def keys(prefix):
        return sorted(e["key"] for e in alice_client.get(f"/memory?prefix={quote(prefix)}").json()["keys"])

    assert keys("a_") == ["a_b"]
    assert keys("a%") == ["a%c", "a%cd"]
    assert keys("thread:") == ["thread:1"]


def test_keys_with_slashes_colons_and_dots_round_trip(alice_client):
    for key in ["user/prefs/ui", "thread:thread_12345", "notes.v2.final", "a b", "ünï/cødé"]:
        assert alice_client.post("/memory", {"key": key, "value": key}, format="json").status_code == 200
        got = alice_client.get("/memory/" + quote(key))
        assert got.status_code == 200, key
        assert got.json()["key"] == key


def test_a_key_named_query_is_still_reachable(alice_client):
    alice_client.post("/memory", {"key": "query", "value": "literal"}, format="json")
    assert alice_client.get("/memory/query").json()["value"] == "literal"
    assert (
        alice_client.put("/memory/query", {"value": "new"}, format="json").json()["previous_value"]
        == "literal"
    )
    assert alice_client.delete("/memory/query").json() == {"status": "deleted"}


def test_post_overwrites_and_keeps_created_at(alice_client):
    alice_client.post("/memory", {"key": "k", "value": 1}, format="json")
    first = alice_client.get("/memory/k").json()
    alice_client.post("/memory", {"key": "k", "value": 2}, format="json")
    second = alice_client.get("/memory/k").json()
    assert second["value"] == 2
    assert second["created_at"] == first["created_at"]
    assert second["updated_at"] > first["updated_at"]


def test_an_overwrite_of_the_same_text_keeps_its_vector_and_embeds_nothing(alice, alice_client, monkeypatch):
    from apps.memory import services
    from apps.memory.models import MemoryItem

    alice_client.post("/memory", {"key": "k", "value": {"a": 1, "b": [2]}}, format="json")
    before = MemoryItem.objects.for_tenant(alice).get(key="k")

    def refuse(*args, **kwargs):
        raise AssertionError("the same text was embedded again")

    monkeypatch.setattr(services, "embed_text", refuse)
    assert (
        alice_client.post("/memory", {"key": "k", "value": {"b": [2], "a": 1}}, format="json").status_code
        == 200
    )
    again = MemoryItem.objects.for_tenant(alice).get(key="k")
    assert (again.embedding_text, again.content_hash) == (before.embedding_text, before.content_hash)
    assert list(again.embedding) == list(before.embedding)
    assert again.updated_at > before.updated_at
    monkeypatch.undo()
    assert alice_client.post("/memory", {"key": "k", "value": {"a": 2}}, format="json").status_code == 200
    changed = MemoryItem.objects.for_tenant(alice).get(key="k")
    assert changed.value == {"a": 2}
    assert changed.content_hash != before.content_hash
    assert list(changed.embedding) != list(before.embedding)


def test_a_value_set_again_is_updated_in_place(alice, alice_client):
    """Its new version stays on the row's page, out of every index (a HOT update): it changes no
    indexed column, and the table leaves room on its pages for it (migration 0005)."""
    from django.db import connection

    def hot_updates():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_get_xact_tuples_hot_updated('memory_memoryitem'::regclass)")
            return cursor.fetchone()[0]

    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'memory_memoryitem'")
        assert cursor.fetchone()[0] == ["fillfactor=75"]
    alice_client.post("/memory", {"key": "k", "value": 1}, format="json")
    before = hot_updates()
    alice_client.post("/memory", {"key": "k", "value": 1}, format="json")
    assert hot_updates() == before + 1
    alice_client.post("/memory", {"key": "k", "value": 2}, format="json")  # a new vector: indexed
    assert hot_updates() == before + 1


def test_query_orders_by_similarity_with_scores_in_range(alice, alice_client, remember):
    remember(
        alice,
        {
            "pet": {"species": "dog", "name": "Biscuit"},
            "car": {"make": "Toyota", "model": "Corolla"},
            "coffee": "flat white with oat milk",
            "weather": "rainy in Bristol",
        },
    )
    results = alice_client.post("/memory/query", {"query": "my dog"}, format="json").json()["results"]
    assert results[0]["key"] == "pet"
    assert len(results) == 4
    scores = [result["score"] for result in results]
    assert scores == sorted(scores, reverse=True)
    assert all(0 <= score <= 1 for score in scores)


def test_query_limit_and_min_score(alice, alice_client, remember):
    remember(alice, {f"fact/{index}": f"fact number {index} about apples" for index in range(15)})
    remember(alice, {"unrelated": "quantum chromodynamics lecture notes"})
    assert len(alice_client.post("/memory/query", {"query": "apples"}, format="json").json()["results"]) == 10
    assert (
        len(
            alice_client.post("/memory/query", {"query": "apples", "limit": 3}, format="json").json()[
                "results"
            ]
        )
        == 3
    )
    everything = alice_client.post("/memory/query", {"query": "apples", "limit": 100}, format="json").json()
    assert len(everything["results"]) == 16
    cut = everything["results"][-1]["score"] + 0.01
    strict = alice_client.post(
        "/memory/query", {"query": "apples", "limit": 100, "min_score": cut}, format="json"
    ).json()["results"]
    assert len(strict) == 15
    assert all(result["score"] >= cut for result in strict)
    assert alice_client.post("/memory/query", {"query": "apples", "min_score": 1}, format="json").json() == {
        "results": []
    }


def test_read_your_writes(alice_client):
    for index, (key, value) in enumerate(
        [("recipe", "grandma's lemon drizzle cake"), ("flight", "BA 123 to Lisbon on Friday")]
    ):
        alice_client.post("/memory", {"key": key, "value": value}, format="json")
        results = alice_client.post("/memory/query", {"query": value, "limit": 1}, format="json").json()
        assert results["results"][0]["key"] == key, index
    alice_client.put("/memory/recipe", {"value": "spicy vegetable curry"}, format="json")
    results = alice_client.post("/memory/query", {"query": "curry dinner", "limit": 1}, format="json").json()
    assert results["results"][0]["value"] == "spicy vegetable curry"
    alice_client.delete("/memory/flight")
    keys = [
        r["key"]
        for r in alice_client.post("/memory/query", {"query": "Lisbon"}, format="json").json()["results"]
    ]
    assert keys == ["recipe"]


def test_empty_memory_query_returns_no_results(alice_client):
    assert alice_client.post("/memory/query", {"query": "anything"}, format="json").json() == {"results": []}


def test_info_lists_memory_and_semantic_search(client):
    info = client.get("/info").json()
    paths = {endpoint["path"] for endpoint in info["endpoints"]}
    assert {"/memory", "/memory/query", "/memory/:key"} <= paths
    assert info["capabilities"]["semantic_search"] is True
