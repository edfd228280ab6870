"""Bad input gets a clear 400 (naming the rule) and changes nothing."""

from __future__ import annotations

import pytest

from apps.resources.models import Resource

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("resource_id", "rule"),
    [
        ("", "1-512 characters"),
        ("x" * 513, "1-512 characters"),
        ("search", "'search' is a route"),
        ("prefix/notes", "may not start with 'prefix/'"),
        ("notes//hello", "empty segments"),
        ("/notes", "empty segments"),
        ("notes/", "empty segments"),
        ("notes/../secret", "'..' segments"),
        ("..", "'..' segments"),
        ("notes/./x", "'..' segments"),
        ("bad\nid", "control characters"),
        (42, "must be a string"),
    ],
)
def test_invalid_ids_on_create_name_the_rule(alice_client, alice, resource_id, rule):
    response = alice_client.post("/resources", {"id": resource_id, "title": "T"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert rule in body["error"]
    assert rule in body["details"]["id"][0]
    assert not Resource.objects.for_tenant(alice).exists()


def test_longest_valid_id_is_accepted(alice_client):
    resource_id = "a/" + "b" * 510
    assert (
        alice_client.post("/resources", {"id": resource_id, "title": "T"}, format="json").status_code == 201
    )
    assert alice_client.get(f"/resources/{resource_id}").status_code == 200


def test_prefix_alone_and_ids_containing_search_are_fine(alice_client):
    for resource_id in ("prefix", "search/results", "notes/search", "a.b:c/d-e_f"):
        response = alice_client.post("/resources", {"id": resource_id, "title": "T"}, format="json")
        assert response.status_code == 201, (resource_id, response.json())
        assert alice_client.get(f"/resources/{resource_id}").json()["id"] == resource_id


@pytest.mark.parametrize("method", ["get", "put", "delete"])
@pytest.mark.parametrize("path", ["/resources/notes//hello", "/resources/notes/../x", "/resources/a/"])
def test_bad_paths_are_400(alice_client, method, path):
    response = getattr(alice_client, method)(path, {"title": "x"} if method == "put" else None, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "a"}, "title"),
        ({"title": "T"}, "id"),
        ({"id": "a", "title": ""}, "title"),
        ({"id": "a", "title": "   "}, "title"),
        ({"id": "a", "title": 5}, "title"),
        ({"id": "a", "title": "x" * 501}, "title"),
        ({"id": "a", "title": "T", "type": ["x"]}, "type"),
        ({"id": "a", "title": "T", "content": {"x": 1}}, "content"),
        ({"id": "a", "title": "T", "content": "nul\u0000here"}, "content"),
        ({"id": "a", "title": "T", "metadata": "text"}, "metadata"),
        ({"id": "a", "title": "T", "metadata": [1]}, "metadata"),
        ({"id": "a", "title": "T", "metadata": {"k": "nul\u0000"}}, "metadata.k"),
        ({"id": "a", "title": "T", "metadata": {"k\u0000": 1}}, "metadata.k\\u0000"),
    ],
)
def test_bad_create_bodies_are_400(alice_client, alice, body, field):
    response = alice_client.post("/resources", body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["details"]
    assert not Resource.objects.for_tenant(alice).exists()


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"text"', b"{not json", b"null"])
def test_non_object_bodies_are_400(alice_client, raw):
    response = alice_client.post("/resources", raw, content_type="application/json")
    assert response.status_code == 400


def test_unsupported_body_type_is_415(alice_client):
    response = alice_client.post("/resources", b"id=a", content_type="text/plain")
    assert response.status_code == 415


def test_bad_update_leaves_the_resource_unchanged(alice_client):
    alice_client.post("/resources", {"id": "a", "title": "T", "content": "keep"}, format="json")
    for body in ({"title": ""}, {"metadata": [1]}, {"content": 3}, {"type": "x" * 101}):
        assert alice_client.put("/resources/a", body, format="json").status_code == 400
    resource = alice_client.get("/resources/a").json()
    assert resource["title"] == "T" and resource["content"] == "keep"
    assert "updated_at" not in resource["metadata"]


def test_bad_list_parameters_are_400(alice_client):
    assert alice_client.get("/resources?limit=0").status_code == 400
    assert alice_client.get("/resources?cursor=garbage").status_code == 400
    assert alice_client.get("/resources/prefix/notes?limit=500").status_code == 400


def test_empty_prefix_is_400(alice_client):
    assert alice_client.get("/resources/prefix/").status_code == 400
    assert alice_client.get("/resources/prefix///").status_code == 400


def test_prefix_with_trailing_slash_is_the_same_folder(alice_client):
    alice_client.post("/resources", {"id": "notes/a", "title": "A"}, format="json")
    assert [r["id"] for r in alice_client.get("/resources/prefix/notes/").json()["resources"]] == ["notes/a"]


def test_unauthenticated_is_401(client):
    assert client.get("/resources").status_code == 401
    assert client.post("/resources", {"id": "a", "title": "T"}, format="json").status_code == 401
    assert client.get("/resources/search?q=x").status_code == 401
