"""Every JSON endpoint refuses a body it cannot parse with a §2 415, before doing anything."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import get_resolver
from rest_framework.views import APIView

from apps.core.info import _walk
from apps.memory.models import MemoryItem
from apps.resources.models import Resource
from apps.tools.models import Tool

pytestmark = pytest.mark.django_db

_CONVERTER = re.compile(r"<(?:\w+:)?\w+>")


def _write_operations() -> list[tuple[str, str]]:
    found = []
    for route, callback in _walk(get_resolver().url_patterns):
        view = getattr(callback, "cls", None)
        if view is None or not issubclass(view, APIView) or not view.parser_classes:
            continue  # the Stripe webhook reads the raw bytes Stripe signed
        path = "/" + _CONVERTER.sub("x", route)
        found += [(method, path) for method in ("post", "put", "patch") if hasattr(view, method)]
    return found


OPERATIONS = _write_operations()


def test_the_walk_finds_the_json_endpoints() -> None:
    for operation in [("post", "/chat"), ("post", "/memory"), ("put", "/resources/x"), ("post", "/pay")]:
        assert operation in OPERATIONS


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_a_foreign_content_type_is_a_415(
    alice_client: Any, method: str, path: str, content_type: str
) -> None:
    body = '{"messages": [{"content": "hi"}], "key": "k", "value": 1, "id": "x", "title": "t"}'
    response = getattr(alice_client, method)(path, body, content_type=content_type)
    assert response.status_code == 415, (path, response.content)
    answer = response.json()
    assert answer["code"] == "unsupported_media_type" and answer["status"] == 415
    assert "application/json" in answer["error"]
    assert not MemoryItem.objects.unscoped().exists() and not Resource.objects.unscoped().exists()
    assert not Tool.objects.unscoped().exists()


def test_chat_with_text_plain_is_a_415_not_a_parse_error(alice_client: Any) -> None:
    response = alice_client.post("/chat", "Hello", content_type="text/plain")
    assert response.status_code == 415
    assert response.json() == {
        "error": "Unsupported media type 'text/plain'; send application/json",
        "code": "unsupported_media_type",
        "status": 415,
    }


def test_json_with_a_charset_and_uploads_are_still_accepted(alice_client: Any) -> None:
    response = alice_client.post(
        "/memory", '{"key": "k", "value": 1}', content_type="application/json; charset=utf-8"
    )
    assert response.status_code == 200, response.content
    upload = alice_client.post("/resources", {"id": "notes/a", "content": "hello", "title": "A"})
    assert upload.status_code == 201, upload.content
