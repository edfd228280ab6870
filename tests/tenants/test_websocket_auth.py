"""Channels shares the HTTP credential code: the handshake's headers decide the principal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import path

from apps.tenants.authentication import ApiKeyAuthMiddleware
from apps.tenants.models import Tenant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


class WhoAmI(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()
        principal, error = self.scope["principal"], self.scope["auth_error"]
        if error is not None:
            await self.send_json(error.payload())
        elif principal is None:
            await self.send_json({"anonymous": True})
        else:
            await self.send_json(
                {"tenant": principal.tenant.slug, "granted": principal.scopes.granted.strings()}
            )
        await self.close()


application = ApiKeyAuthMiddleware(URLRouter([path("ws", WhoAmI.as_asgi())]))


async def handshake(headers: list[tuple[bytes, bytes]]) -> Any:
    communicator = WebsocketCommunicator(application, "/ws", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    message = await communicator.receive_json_from()
    await communicator.disconnect()
    return message


async def test_websocket_handshake_authenticates_like_http(
    alice: Tenant, make_key: Callable[..., str]
) -> None:
    from asgiref.sync import sync_to_async

    key = await sync_to_async(make_key)(alice, "chat.*")
    assert await handshake([(b"authorization", f"Bearer {key}".encode())]) == {
        "tenant": alice.slug,
        "granted": ["chat.*"],
    }
    assert await handshake([]) == {"anonymous": True}
    refused = await handshake([(b"authorization", b"Bearer nope")])
    assert refused["status"] == 401 and refused["code"] == "unauthenticated"
    bad_scope = await handshake([(b"x-api-key", key.encode()), (b"x-slop-scope", b"chats.read")])
    assert bad_scope["code"] == "invalid_scope"
