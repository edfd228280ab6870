"""One input rule for every text field: a NUL or a lone surrogate is a 400 naming the field, never a
500 from PostgreSQL, and nothing is stored (apps/core/text.py, parsers.py, PlatformMiddleware)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import override_settings

from apps.agents.models import Agent
from apps.chat.models import Chat, Message, Thread
from apps.memory.models import MemoryItem
from apps.pay.models import Payment
from apps.resources.models import Resource
from apps.tools.models import Tool, ToolJob

pytestmark = pytest.mark.django_db

NUL = "a\u0000b"
SURROGATE = "a\ud800b"
WEATHER = {"description": "Weather", "url": "https://tools.example.com/weather", "parameters": {}}
CHAT = {"messages": [{"role": "user", "content": "hi"}]}
OWNED = [Agent, Chat, Message, Thread, MemoryItem, Payment, Resource, Tool, ToolJob]

# (method, path, JSON body or None, the field the 400 names)
CASES: list[tuple[str, str, Any, str]] = [
    ("post", "/chat", {"messages": [{"role": "user", "content": NUL}]}, "messages[0].content"),
    ("post", "/chat", {"messages": [{"role": "user", "content": SURROGATE}]}, "messages[0].content"),
    ("post", "/chat", {**CHAT, "thread_id": NUL}, "thread_id"),
    ("post", "/chat", {"messages": [{"role": SURROGATE, "content": "hi"}]}, "messages[0].role"),
    ("post", "/chat/stream", {"messages": [{"content": NUL}]}, "messages[0].content"),
    ("post", "/chat/stream", {"messages": [{"content": SURROGATE}]}, "messages[0].content"),
    ("get", "/chat/stream?content=a%00b", None, "content"),
    ("get", "/chat/a%00b", None, "identifier"),
    ("post", "/memory", {"key": "k", "value": NUL}, "value"),
    ("post", "/memory", {"key": "k", "value": {"a": {"b": SURROGATE}}}, "value.a.b"),
    ("post", "/memory", {"key": "k", "value": {NUL: 1}}, "value.a\\u0000b"),
    ("post", "/memory", {"key": NUL, "value": 1}, "key"),
    ("put", "/memory/k", {"value": [SURROGATE]}, "value[0]"),
    ("post", "/memory/query", {"query": NUL}, "query"),
    ("post", "/memory/query", {"query": "q", "filter": {"key_prefix": SURROGATE}}, "filter.key_prefix"),
    ("get", "/memory?prefix=a%00b", None, "prefix"),
    ("get", "/memory/a%00b", None, "key"),
    ("post", "/resources", {"id": NUL, "title": "t"}, "id"),
    ("post", "/resources", {"id": "r", "title": SURROGATE}, "title"),
    ("post", "/resources", {"id": "r", "title": "t", "content": SURROGATE}, "content"),
    ("post", "/resources", {"id": "r", "title": "t", "metadata": {"x": [SURROGATE]}}, "metadata.x[0]"),
    ("put", "/resources/r", {"content": SURROGATE}, "content"),
    ("get", "/resources?prefix=a%00b", None, "prefix"),
    ("get", "/resources/search?q=a%00b", None, "q"),
    ("get", "/resources/prefix/a%00b", None, "prefix"),
    ("get", "/resources/a%00b", None, "resource_id"),
    ("put", "/tools/weather", {**WEATHER, "description": SURROGATE}, "description"),
    (
        "put",
        "/tools/weather",
        {**WEATHER, "parameters": {"city": {"type": "string", "description": NUL}}},
        "parameters.city.description",
    ),
    ("post", "/tools/calculator", {"expression": NUL}, "expression"),
    ("post", "/tools/calculator?async=true", {"expression": SURROGATE}, "expression"),
    ("get", "/tools/jobs/job_a%00b", None, "job_id"),
    ("get", "/pay/tx_a%00b", None, "payment_id"),
    ("post", "/agents", {"id": "a", "description": NUL}, "description"),
    ("post", "/agents", {"id": "a", "instructions": SURROGATE}, "instructions"),
    ("put", "/agents/a", {"memory_prefix": NUL}, "memory_prefix"),
    ("post", "/pay", {"amount": 5, "currency": "USD", "description": NUL}, "description"),
    ("post", "/pay", {"amount": 5, "currency": "USD", "description": SURROGATE}, "description"),
]


def _stored() -> dict[str, int]:
    return {model.__name__: model.objects.unscoped().count() for model in OWNED}


@pytest.mark.parametrize(("method", "path", "body", "field"), CASES)
def test_nul_and_lone_surrogates_are_a_400_naming_the_field(
    alice_client: Any, method: str, path: str, body: Any, field: str
) -> None:
    before = _stored()
    with override_settings(STRIPE_SECRET_KEY="sk_test_never_called"):
        if body is None:
            response = getattr(alice_client, method)(path)
        else:  # json.dumps escapes the surrogate as \ud800, as a client's JSON would
            response = getattr(alice_client, method)(path, json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["code"] == "validation_error"
    assert answer["status"] == 400
    assert field in answer["details"], answer
    assert _stored() == before


def test_a_multipart_field_is_held_to_the_same_rule(alice_client: Any) -> None:
    response = alice_client.post("/resources", {"id": "r", "title": NUL, "content": "x"})
    assert response.status_code == 400, response.content
    assert "title" in response.json()["details"]
    assert Resource.objects.unscoped().count() == 0


def test_a_surrogate_pair_and_ordinary_text_are_stored(alice_client: Any) -> None:
    value = {"emoji": "\U0001f600", "accents": "déjà vu", "control": "tab\there"}
    response = alice_client.post(
        "/memory", json.dumps({"key": "k", "value": value}), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert alice_client.get("/memory/k").json()["value"] == value


def test_deeply_nested_bad_text_is_found_without_recursion(alice_client: Any) -> None:
    value: Any = NUL
    for _ in range(60):
        value = {"a": value}
    response = alice_client.post(
        "/memory", json.dumps({"key": "k", "value": value}), content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert "value" + ".a" * 60 in response.json()["details"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_websocket_message_is_held_to_the_same_rule(alice: Any, make_key: Any) -> None:
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from slop_platform.asgi import application

    key = await sync_to_async(make_key)(alice, "chat.*")
    communicator = WebsocketCommunicator(
        application, "/chat/ws", headers=[(b"authorization", f"Bearer {key}".encode())]
    )
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_to(text_data=json.dumps({"messages": [{"content": SURROGATE}]}))
    error = await communicator.receive_json_from(timeout=10)
    assert error["type"] == "error" and error["code"] == "validation_error", error
    assert "messages[0].content" in error["details"]
    assert await communicator.receive_json_from(timeout=10) == {"status": "complete"}
    await communicator.disconnect()
    assert await sync_to_async(_stored)() == {model.__name__: 0 for model in OWNED}
