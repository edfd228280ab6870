"""Create, read, update, delete and list resources, as in the seed's examples."""

from __future__ import annotations

import pytest

from apps.resources.models import Resource, ResourceChunk

pytestmark = pytest.mark.django_db

HELLO = {
    "id": "notes/hello",
    "title": "Hello Notes",
    "type": "note",
    "content": "This is a new resource",
    "metadata": {"created_by": "user_123", "tags": ["notes", "hello"]},
}


def test_seed_flow_create_update_prefix_delete(alice_client, alice):
    created = alice_client.post("/resources", HELLO, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["status"] == "created"
    resource = body["resource"]
    assert resource["id"] == "notes/hello"
    assert resource["title"] == "Hello Notes"
    assert resource["type"] == "note"
    assert resource["content"] == "This is a new resource"
    assert resource["metadata"]["created_by"] == "user_123"
    assert resource["metadata"]["tags"] == ["notes", "hello"]
    assert resource["metadata"]["created_at"].endswith("Z")

    updated = alice_client.put(
        "/resources/notes/hello",
        {
            "title": "Updated Hello Notes",
            "content": "This content has been updated",
            "metadata": {"tags": ["notes", "hello", "updated"]},
        },
        format="json",
    )
    assert updated.status_code == 200, updated.json()
    body = updated.json()
    assert body["status"] == "updated"
    metadata = body["resource"]["metadata"]
    assert body["resource"]["title"] == "Updated Hello Notes"
    assert body["resource"]["type"] == "note"
    assert body["resource"]["content"] == "This content has been updated"
    assert metadata["created_by"] == "user_123"
    assert metadata["tags"] == ["notes", "hello", "updated"]
    assert metadata["created_at"] == resource["metadata"]["created_at"]
    assert metadata["updated_at"].endswith("Z")

    alice_client.post(
        "/resources", {"id": "notes/todo", "title": "To-Do List", "type": "note"}, format="json"
    )
    alice_client.post("/resources", {"id": "notesbook", "title": "Not in the folder"}, format="json")
    listed = alice_client.get("/resources/prefix/notes")
    assert listed.status_code == 200
    assert sorted(item["id"] for item in listed.json()["resources"]) == ["notes/hello", "notes/todo"]
    assert {item["title"] for item in listed.json()["resources"]} == {"Updated Hello Notes", "To-Do List"}

    deleted = alice_client.delete("/resources/notes/hello")
    assert deleted.status_code == 200
    assert deleted.json() == {"status": "deleted", "id": "notes/hello"}
    assert alice_client.get("/resources/notes/hello").status_code == 404
    assert not Resource.objects.for_tenant(alice).filter(path="notes/hello").exists()
    assert not ResourceChunk.objects.for_tenant(alice).filter(resource__path="notes/hello").exists()


def test_get_returns_the_whole_resource(alice_client):
    alice_client.post(
        "/resources",
        {"id": "mars-101", "title": "Mars: The Red Planet", "type": "article",
         "content": "Mars is the fourth planet from the Sun.", "metadata": {"source": "astronomy-db"}},
        format="json",
    )  # fmt: skip
    response = alice_client.get("/resources/mars-101")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "mars-101"
    assert body["content"] == "Mars is the fourth planet from the Sun."
    assert body["metadata"]["source"] == "astronomy-db"


def test_create_existing_id_is_409_and_keeps_the_first(alice_client):
    assert alice_client.post("/resources", HELLO, format="json").status_code == 201
    again = alice_client.post("/resources", {**HELLO, "title": "Other"}, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"
    assert alice_client.get("/resources/notes/hello").json()["title"] == "Hello Notes"


def test_create_defaults_type_and_content(alice_client):
    response = alice_client.post("/resources", {"id": "a", "title": "A"}, format="json")
    assert response.status_code == 201
    assert response.json()["resource"]["type"] == "document"
    assert response.json()["resource"]["content"] == ""


def test_server_sets_created_at_even_if_client_sends_one(alice_client):
    response = alice_client.post(
        "/resources", {"id": "a", "title": "A", "metadata": {"created_at": "1999-01-01"}}, format="json"
    )
    assert response.json()["resource"]["metadata"]["created_at"] != "1999-01-01"
    updated = alice_client.put("/resources/a", {"metadata": {"created_at": "1999", "x": 1}}, format="json")
    metadata = updated.json()["resource"]["metadata"]
    assert metadata["created_at"] == response.json()["resource"]["metadata"]["created_at"]
    assert metadata["x"] == 1


def test_update_missing_is_404(alice_client):
    response = alice_client.put("/resources/nope", {"title": "x"}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_delete_missing_is_404(alice_client):
    assert alice_client.delete("/resources/nope").status_code == 404


def test_list_newest_first_with_filters_and_cursor(alice_client):
    for index in range(5):
        kind = "note" if index % 2 else "article"
        alice_client.post(
            "/resources", {"id": f"docs/{index}", "title": f"Doc {index}", "type": kind}, format="json"
        )
    alice_client.post("/resources", {"id": "other/x", "title": "X", "type": "note"}, format="json")
    everything = alice_client.get("/resources").json()
    assert [item["id"] for item in everything["resources"]] == [
        "other/x", "docs/4", "docs/3", "docs/2", "docs/1", "docs/0"
    ]  # fmt: skip
    assert everything["next_cursor"] is None
    assert "content" not in everything["resources"][0]
    notes = alice_client.get("/resources?type=note").json()["resources"]
    assert [item["id"] for item in notes] == ["other/x", "docs/3", "docs/1"]
    docs = alice_client.get("/resources?prefix=docs/").json()["resources"]
    assert len(docs) == 5
    first = alice_client.get("/resources?limit=2").json()
    assert [item["id"] for item in first["resources"]] == ["other/x", "docs/4"]
    second = alice_client.get(f"/resources?limit=2&cursor={first['next_cursor']}").json()
    assert [item["id"] for item in second["resources"]] == ["docs/3", "docs/2"]


def test_update_rechunks_and_reembeds(alice_client, alice):
    alice_client.post("/resources", {"id": "r", "title": "T", "content": "first words"}, format="json")
    before = list(ResourceChunk.objects.for_tenant(alice).values_list("text", "embedding"))
    alice_client.put("/resources/r", {"content": "completely different text"}, format="json")
    after = list(ResourceChunk.objects.for_tenant(alice).values_list("text", "embedding"))
    assert [text for text, _ in after] == ["completely different text"]
    assert list(after[0][1]) != list(before[0][1])


def test_long_content_is_split_into_overlapping_chunks(alice_client, alice, settings):
    settings.RESOURCES_ASYNC_INDEX_CHARS = 100_000  # embedded in the request (test_indexing_jobs: a job)
    sentences = " ".join(f"Sentence number {index} talks about topic {index}." for index in range(200))
    response = alice_client.post(
        "/resources", {"id": "long", "title": "Long", "content": sentences}, format="json"
    )
    assert response.status_code == 201
    chunks = list(ResourceChunk.objects.for_tenant(alice).order_by("position"))
    assert len(chunks) > 5
    assert all(chunk.embedding is not None for chunk in chunks)
    assert all(len(chunk.text) <= 800 for chunk in chunks)
    # Overlap: each chunk starts with words the previous one ended with.
    assert chunks[1].text.split()[0] in chunks[0].text


def test_chunks_past_the_embedding_cap_are_found_by_words(alice_client, alice, settings):
    settings.RESOURCES_MAX_EMBEDDED_CHUNKS = 2
    filler = " ".join(f"Paragraph {index} is about nothing in particular." for index in range(100))
    content = f"{filler} The very last line mentions quetzalcoatlus."
    assert (
        alice_client.post(
            "/resources", {"id": "big", "title": "Big", "content": content}, format="json"
        ).status_code
        == 201
    )
    chunks = list(ResourceChunk.objects.for_tenant(alice).order_by("position"))
    assert len(chunks) > 2
    assert [chunk.embedding is not None for chunk in chunks[:3]] == [True, True, False]
    results = alice_client.get("/resources/search?q=quetzalcoatlus").json()["results"]
    assert results[0]["id"] == "big"
    assert "quetzalcoatlus" in results[0]["snippet"]
