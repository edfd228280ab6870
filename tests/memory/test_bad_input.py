"""Bad input gets a clear 400/413 and changes nothing."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from apps.memory.models import MemoryItem

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored(alice, remember):
    remember(alice, {"user_preference": {"theme": "dark"}})


def _details(response):
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    return body["details"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"value": 1}, "key"),
        ({"key": "", "value": 1}, "key"),
        ({"key": "k" * 513, "value": 1}, "key"),
        ({"key": 42, "value": 1}, "key"),
        ({"key": "bad\nkey", "value": 1}, "key"),
        ({"key": "ok"}, "value"),
        ({"key": "ok", "value": None}, "value"),
        ({"key": "ok", "value": "nul \u0000 inside"}, "value"),
        ({"key": "ok", "value": {"nested": ["a", {"deep": "\u0000"}]}}, "value.nested[1].deep"),
    ],
)
def test_post_rejects_bad_fields_with_details(alice_client, alice, body, field):
    response = alice_client.post("/memory", body, format="json")
    assert field in _details(response)
    assert MemoryItem.objects.for_tenant(alice).count() == 0


def test_post_accepts_every_json_value_kind_and_a_512_character_key(alice_client):
    for index, value in enumerate(["text", 3, 2.5, True, False, [1, "two"], {"a": {"b": []}}, 0, ""]):
        key = f"kind.{index}"
        assert alice_client.post("/memory", {"key": key, "value": value}, format="json").status_code == 200
        assert alice_client.get(f"/memory/{key}").json()["value"] == value
    long_key = "a/b:c." + "k" * 506
    assert alice_client.post("/memory", {"key": long_key, "value": 1}, format="json").status_code == 200
    assert alice_client.get(f"/memory/{long_key}").json()["key"] == long_key


def test_body_that_is_not_a_json_object_is_400(alice_client, alice):
    for raw in ["[1, 2]", '"text"', "{not json", ""]:
        response = alice_client.post("/memory", raw, content_type="application/json")
        assert response.status_code == 400, raw
        assert response.json()["code"] in ("invalid_request", "validation_error")
    assert MemoryItem.objects.for_tenant(alice).count() == 0


def test_non_json_content_type_is_415(alice_client):
    response = alice_client.post("/memory", "key=a&value=b", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


def test_value_over_one_mebibyte_is_413_and_keeps_the_old_value(alice_client, alice, stored):
    big = "x" * (1024 * 1024)
    response = alice_client.post("/memory", {"key": "user_preference", "value": big}, format="json")
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert MemoryItem.objects.for_tenant(alice).get(key="user_preference").value == {"theme": "dark"}
    put = alice_client.put("/memory/user_preference", {"value": big}, format="json")
    assert put.status_code == 413
    assert MemoryItem.objects.for_tenant(alice).get(key="user_preference").value == {"theme": "dark"}


def test_value_just_under_the_limit_is_stored(alice_client):
    value = "y" * (1024 * 1024 - 2)  # the JSON string's quotes make it exactly 1 MiB
    response = alice_client.post("/memory", {"key": "big", "value": value}, format="json")
    assert response.status_code == 200
    assert len(alice_client.get("/memory/big").json()["value"]) == len(value)


def test_body_far_over_the_request_limit_is_413(alice_client):
    body = json.dumps({"key": "huge", "value": "z" * (5 * 1024 * 1024)})
    response = alice_client.post("/memory", body, content_type="application/json")
    assert response.status_code == 413


@override_settings(SLOP_MEMORY_MAX_VALUE_BYTES=100)
def test_value_limit_is_configurable(alice_client):
    assert alice_client.post("/memory", {"key": "a", "value": "x" * 50}, format="json").status_code == 200
    response = alice_client.post("/memory", {"key": "b", "value": "x" * 200}, format="json")
    assert response.status_code == 413
    assert response.json()["limit_bytes"] == 100


def test_put_of_missing_key_is_404(alice_client, alice):
    response = alice_client.put("/memory/nothing_here", {"value": 1}, format="json")
    assert response.status_code == 404
    assert response.json()["error"] == "Memory key not found: nothing_here"
    assert MemoryItem.objects.for_tenant(alice).count() == 0


def test_put_without_value_is_400(alice_client, stored):
    assert "value" in _details(alice_client.put("/memory/user_preference", {}, format="json"))
    assert "value" in _details(alice_client.put("/memory/user_preference", {"value": None}, format="json"))
    response = alice_client.put("/memory/user_preference", [1], format="json")
    assert response.status_code == 400


def test_delete_of_missing_key_is_404(alice_client):
    assert alice_client.delete("/memory/nothing_here").status_code == 404


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["query"]),
        ({"query": ""}, ["query"]),
        ({"query": "   "}, ["query"]),
        ({"query": 5}, ["query"]),
        ({"query": "x" * 10_001}, ["query"]),
        ({"query": "ok", "limit": 0}, ["limit"]),
        ({"query": "ok", "limit": 101}, ["limit"]),
        ({"query": "ok", "limit": "5"}, ["limit"]),
        ({"query": "ok", "limit": True}, ["limit"]),
        ({"query": "ok", "limit": 2.5}, ["limit"]),
        ({"query": "ok", "min_score": 1.5}, ["min_score"]),
        ({"query": "ok", "min_score": -0.1}, ["min_score"]),
        ({"query": "ok", "min_score": "high"}, ["min_score"]),
        ({"query": "ok", "filter": "thread:"}, ["filter"]),
        ({"query": "ok", "filter": {"key_prefix": 7}}, ["filter.key_prefix"]),
        ({"query": "ok", "filter": {"key_prefix": "p" * 513}}, ["filter.key_prefix"]),
        ({"limit": 500, "min_score": 9}, ["query", "limit", "min_score"]),
    ],
)
def test_query_rejects_bad_fields_with_details(alice_client, stored, body, fields):
    details = _details(alice_client.post("/memory/query", body, format="json"))
    assert sorted(details) == sorted(fields)


def test_query_accepts_limit_100_nulls_and_unknown_fields(alice_client, stored):
    body = {"query": "theme", "limit": 100, "filter": None, "min_score": None, "extra": "ignored"}
    response = alice_client.post("/memory/query", body, format="json")
    assert response.status_code == 200
    assert [r["key"] for r in response.json()["results"]] == ["user_preference"]
    empty_prefix = {"query": "theme", "filter": {"key_prefix": ""}}
    assert len(alice_client.post("/memory/query", empty_prefix, format="json").json()["results"]) == 1


def test_list_rejects_bad_limit_and_cursor(alice_client, stored):
    assert "limit" in _details(alice_client.get("/memory?limit=0"))
    assert "limit" in _details(alice_client.get("/memory?limit=abc"))
    assert "cursor" in _details(alice_client.get("/memory?cursor=garbage!"))


def test_unauthenticated_requests_are_401(client):
    assert client.get("/memory").status_code == 401
    assert client.post("/memory/query", {"query": "x"}, content_type="application/json").status_code == 401


@pytest.mark.parametrize("depth", [65, 900, 200_000])
def test_deeply_nested_values_are_400_not_500(alice_client, alice, depth):
    body = '{"key": "deep", "value": ' + "[" * depth + "]" * depth + "}"
    response = alice_client.post("/memory", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] in ("validation_error", "invalid_request")
    assert MemoryItem.objects.for_tenant(alice).count() == 0


def test_nesting_up_to_64_levels_is_stored(alice_client):
    value = json.loads("[" * 63 + '"core"' + "]" * 63)
    assert alice_client.post("/memory", {"key": "nested", "value": value}, format="json").status_code == 200
    assert alice_client.get("/memory/nested").json()["value"] == value


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        ("get", "/memory/a%00b", None, "key"),
        ("delete", "/memory/a%00b", None, "key"),
        ("put", "/memory/a%00b", {"value": 1}, "key"),
        ("get", "/memory?prefix=%00", None, "prefix"),
        ("get", "/memory?prefix=" + "p" * 513, None, "prefix"),
        ("post", "/memory/query", {"query": "x", "filter": {"key_prefix": "a\u0000"}}, "filter.key_prefix"),
    ],
)
def test_control_characters_in_keys_and_prefixes_are_400(alice_client, stored, method, url, body, field):
    send = getattr(alice_client, method)
    response = send(url, body, format="json") if body is not None else send(url)
    assert field in _details(response)
    # the request failed cleanly: the next one works
    assert alice_client.get("/memory/user_preference").json()["value"] == {"theme": "dark"}


def test_a_nul_in_a_query_is_400_like_any_text_field(alice_client, stored):
    response = alice_client.post("/memory/query", {"query": "theme\u0000 with a nul"}, format="json")
    assert "query" in _details(response)
    assert alice_client.get("/memory?cursor=%00").status_code == 400
