"""Tenant isolation and resources.<id>.read/.write scopes on every endpoint.

Charlie never sees Alice's resources: 404 on every id, nothing in lists, prefix listings or
searches. Scopes match ids by prefix; lists and searches silently leave out what the caller may not
read, and a caller with no read scope at all gets the seed's 403 scope violation."""

from __future__ import annotations

import pytest

from apps.resources.models import Resource
from apps.resources.services import resource_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_data(alice):
    for resource_id, title in [
        ("notes/hello", "Hello Notes about volcanoes"),
        ("notes/todo", "To-Do volcano list"),
        ("private/diary", "Diary about volcanoes"),
        ("shared", "Shared volcano page"),
    ]:
        resource_create(tenant=alice, resource_id=resource_id, title=title, content="Volcano lava basalt.")
    return alice


# --- another tenant -------------------------------------------------------------------------


def test_charlie_gets_404_for_alice_ids(alice_data, charlie_client):
    for method in ("get", "delete"):
        response = getattr(charlie_client, method)("/resources/notes/hello")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    response = charlie_client.put("/resources/notes/hello", {"title": "pwned"}, format="json")
    assert response.status_code == 404
    assert (
        Resource.objects.for_tenant(alice_data).get(path="notes/hello").title == "Hello Notes about volcanoes"
    )


def test_charlie_sees_nothing_of_alice_in_lists_prefix_and_search(alice_data, charlie_client):
    assert charlie_client.get("/resources").json() == {"resources": [], "next_cursor": None}
    assert charlie_client.get("/resources/prefix/notes").json()["resources"] == []
    assert charlie_client.get("/resources/search?q=volcano").json()["results"] == []
    assert charlie_client.get("/resources/search?q=volcano&prefix=notes/").json()["results"] == []


def test_charlie_can_use_the_same_ids_independently(alice_data, charlie_client, charlie):
    response = charlie_client.post("/resources", {"id": "notes/hello", "title": "Charlie's"}, format="json")
    assert response.status_code == 201
    assert charlie_client.get("/resources/notes/hello").json()["title"] == "Charlie's"
    assert Resource.objects.for_tenant(alice_data).get(path="notes/hello").title != "Charlie's"
    assert [r["id"] for r in charlie_client.get("/resources").json()["resources"]] == ["notes/hello"]
    charlie_client.delete("/resources/notes/hello")
    assert Resource.objects.for_tenant(alice_data).filter(path="notes/hello").exists()


# --- scopes -----------------------------------------------------------------------------------


def ids(response, key="resources"):
    assert response.status_code == 200, response.json()
    return sorted(item["id"] for item in response.json()[key])


def test_prefix_read_scope_filters_lists_prefix_listing_and_search(alice_data, client_for):
    client = client_for(alice_data, "resources.notes/.read")
    assert ids(client.get("/resources")) == ["notes/hello", "notes/todo"]
    assert ids(client.get("/resources/prefix/notes")) == ["notes/hello", "notes/todo"]
    assert ids(client.get("/resources/search?q=volcano"), "results") == ["notes/hello", "notes/todo"]
    assert client.get("/resources/notes/hello").status_code == 200
    denied = client.get("/resources/private/diary")
    assert denied.status_code == 403
    assert denied.json()["required_scope"] == "resources.private/diary.read"
    assert denied.json()["permitted"] is False
    # A prefix listing of a folder it cannot read is empty, not an error.
    assert ids(client.get("/resources/prefix/private")) == []


def test_header_narrows_the_key(alice_data, client_for):
    client = client_for(alice_data, "resources.*", scope_header="resources.shared.read")
    assert ids(client.get("/resources")) == ["shared"]
    assert ids(client.get("/resources/search?q=volcano"), "results") == ["shared"]
    assert client.get("/resources/notes/hello").status_code == 403
    assert client.post("/resources", {"id": "shared2", "title": "T"}, format="json").status_code == 403


def test_no_read_scope_at_all_is_403_on_lists_and_search(alice_data, client_for):
    client = client_for(alice_data, "memory.*,resources.write")
    for url in ("/resources", "/resources/prefix/notes", "/resources/search?q=volcano", "/resources/shared"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert response.json()["code"] == "scope_violation"


def test_write_scope_by_prefix(alice_data, client_for):
    client = client_for(alice_data, "resources.read,resources.notes/.write")
    assert client.post("/resources", {"id": "notes/new", "title": "T"}, format="json").status_code == 201
    assert client.put("/resources/notes/new", {"title": "U"}, format="json").status_code == 200
    assert client.delete("/resources/notes/new").status_code == 200
    for call in (
        lambda: client.post("/resources", {"id": "private/x", "title": "T"}, format="json"),
        lambda: client.put("/resources/private/diary", {"title": "U"}, format="json"),
        lambda: client.delete("/resources/private/diary"),
    ):
        response = call()
        assert response.status_code == 403
        assert response.json()["required_scope"].endswith(".write")
    assert Resource.objects.for_tenant(alice_data).get(path="private/diary").title == "Diary about volcanoes"


def test_read_only_key_cannot_write(alice_data, client_for):
    client = client_for(alice_data, "resources.read")
    assert client.post("/resources", {"id": "x", "title": "T"}, format="json").status_code == 403
    assert client.put("/resources/shared", {"title": "U"}, format="json").status_code == 403
    assert client.delete("/resources/shared").status_code == 403
    assert not Resource.objects.for_tenant(alice_data).filter(path="x").exists()


def test_upload_needs_write_scope_for_its_id(alice_data, client_for):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = client_for(alice_data, "resources.notes/.*")
    file = SimpleUploadedFile("a.txt", b"hello", "text/plain")
    response = client.post("/resources", {"file": file, "id": "private/a"}, format="multipart")
    assert response.status_code == 403
    file = SimpleUploadedFile("a.txt", b"hello", "text/plain")
    assert client.post("/resources", {"file": file, "id": "notes/a"}, format="multipart").status_code == 201


def test_scope_prefix_with_like_wildcards_is_literal(alice, client_for):
    resource_create(tenant=alice, resource_id="a_b/x", title="literal underscore")
    resource_create(tenant=alice, resource_id="aXb/y", title="would match a LIKE wildcard")
    client = client_for(alice, "resources.a_b/.read")
    assert ids(client.get("/resources")) == ["a_b/x"]
    assert ids(client.get("/resources/search?q=literal underscore wildcard"), "results") == ["a_b/x"]
