"""Issue 12: a tool schema whose $refs form a cycle (or point nowhere, or away) is a 400 at
registration, naming the field, and nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest

from apps.tools.models import Tool

pytestmark = pytest.mark.django_db

LOOP = {"$ref": "#/$defs/a"}
SCHEMAS: dict[str, tuple[dict[str, Any], str]] = {
    "self": ({"type": "object", "properties": {"node": {"$ref": "#"}}}, "recursive"),
    "root-loop": ({"type": "object", "$ref": "#"}, "recursive"),
    "mutual": (
        {
            "type": "object",
            "properties": {"x": LOOP},
            "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}},
        },
        "recursive",
    ),
    "through-items": (
        {
            "type": "object",
            "properties": {"tree": {"$ref": "#/$defs/node"}},
            "$defs": {
                "node": {"type": "object", "properties": {"children": {"items": {"$ref": "#/$defs/node"}}}}
            },
        },
        "recursive",
    ),
    "anchor": (
        {"type": "object", "properties": {"n": {"$anchor": "n", "items": {"$ref": "#n"}}}},
        "recursive",
    ),
    "escaped": (
        {"type": "object", "properties": {"a/b": {"items": {"$ref": "#/properties/a~1b"}}}},
        "recursive",
    ),
    "dangling": ({"type": "object", "properties": {"x": {"$ref": "#/$defs/missing"}}}, "points to nothing"),
    "remote": ({"type": "object", "properties": {"x": {"$ref": "https://example.com/s.json"}}}, "local"),
    "dynamic": (
        {"type": "object", "$dynamicAnchor": "meta", "properties": {"x": {"$dynamicRef": "#meta"}}},
        "not supported",
    ),
}


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_a_schema_with_a_bad_ref_is_refused_at_registration(alice, alice_client, name: str) -> None:
    schema, fragment = SCHEMAS[name]
    response = alice_client.put(
        "/tools/walker", {"url": "https://tools.example.com/walk", "schema": schema}, format="json"
    )

    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "validation_error"
    assert fragment in body["details"]["schema"][0]
    assert not Tool.objects.for_tenant(alice).filter(slug="walker").exists()


def test_shared_definitions_without_a_cycle_are_fine(alice, alice_client) -> None:
    schema = {
        "type": "object",
        "properties": {"start": {"$ref": "#/$defs/point"}, "end": {"$ref": "#/$defs/point"}},
        "required": ["start"],
        "$defs": {
            "point": {"type": "object", "properties": {"x": {"$ref": "#/$defs/coord"}}},
            "coord": {"type": "number"},
        },
    }
    response = alice_client.put(
        "/tools/walker", {"url": "https://tools.example.com/walk", "schema": schema}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert alice_client.post("/tools/walker", {"start": {"x": "north"}}, format="json").status_code == 400
