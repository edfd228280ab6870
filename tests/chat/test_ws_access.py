"""The WebSocket consumer checks each message with the same declaration as POST /chat (SEND)."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import path

from apps.chat.consumers import ChatConsumer
from apps.chat.models import Thread
from apps.tenants.authentication import ApiKeyAuthMiddleware
from apps.tenants.models import Tenant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture(autouse=True)
def _release_worker_connections() -> Iterator[None]:
    # A run stores its reply from a worker thread of the test's event loop; the loop is gone after
    # the test and its threads' database sessions go with them only once they are collected.
    yield
    gc.collect()


application = ApiKeyAuthMiddleware(URLRouter([path("chat/ws", ChatConsumer.as_asgi())]))


async def _exchange(key: str, message: dict[str, Any]) -> list[dict[str, Any]]:
    communicator = WebsocketCommunicator(application, "/chat/ws", headers=[(b"x-api-key", key.encode())])
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to(message)
    received = [await communicator.receive_json_from(timeout=10)]
    while received[-1] != {"status": "complete"}:
        received.append(await communicator.receive_json_from(timeout=10))
    await communicator.disconnect()
    return received


async def test_a_message_to_a_thread_the_key_may_not_write_is_refused(
    alice: Tenant, make_key: Callable[..., str]
) -> None:
    key = await sync_to_async(make_key)(alice, "chat.thread_mine.write")
    refused, complete = await _exchange(key, {"thread_id": "thread_other", "messages": [{"content": "hi"}]})
    assert refused["type"] == "error" and refused["code"] == "scope_violation"
    assert refused["required_scope"] == "chat.thread_other.write"
    assert complete == {"status": "complete"}
    invalid, _ = await _exchange(key, {"thread_id": "not a thread", "messages": [{"content": "hi"}]})
    assert invalid["code"] == "validation_error" and "thread_id" in invalid["details"]
    assert not await sync_to_async(Thread.objects.for_tenant(alice).exists)()
    allowed = await _exchange(key, {"thread_id": "thread_mine", "messages": [{"content": "hi"}]})
    assert allowed[-2]["type"] == "done" and allowed[-2]["thread_id"] == "thread_mine"
