"""WebSocket /chat/ws: many exchanges per connection, the §5 events, `{"status": "complete"}` after
each, and `{"type": "cancel"}` to stop the current reply (stored as `incomplete`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from apps.chat.access import SEND
from apps.chat.engine import Exchange, error_event
from apps.chat.runs import Run, run_start
from apps.chat.services import exchange_prepare
from apps.chat.streaming import worker_thread
from apps.chat.tickets import principal_for_ticket
from apps.core.errors import ApplicationError, ValidationFailed, error_payload, to_application_error
from apps.core.text import json_text_problems
from apps.tenants.access import Context, enforce
from apps.tenants.authentication import Principal, with_end_user

COMPLETE = {"status": "complete"}


class ChatConsumer(AsyncWebsocketConsumer):
    access = SEND  # every message is an exchange: the declaration POST /chat has
    principal: Principal | None = None
    run: Run | None = None
    forwarder: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        await self.accept()
        principal = self.scope.get("principal")
        ticket = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("ticket")
        if principal is None and ticket:
            try:
                principal = await database_sync_to_async(principal_for_ticket)(
                    ticket[0], path_tenant_slug=self.scope.get("public_tenant_slug")
                )
            except ApplicationError as refused:
                self.scope["auth_error"] = refused
        if principal is None and self.scope.get("auth_error") is None:
            # Neither a key nor a ticket: the tenant's public surface, if this URL has one.
            principal = self.scope.get("public_principal")
            self.scope["auth_error"] = self.scope.get("public_error")
        if principal is not None:
            try:  # X-SLOP-User on the handshake names the end user of every exchange on it
                principal = with_end_user(principal, _handshake_header(self.scope, b"x-slop-user"))
            except ApplicationError as refused:
                self.scope["auth_error"], principal = refused, None
        if principal is None:
            error = self.scope.get("auth_error") or ApplicationError(
                "Missing API key: send 'Authorization: Bearer <api key>' on the handshake"
                " (browsers: ?ticket= from POST /chat/tickets)",
                code="unauthenticated",
                status=401,
            )
            await self.send_json(error_event(error.payload()))
            await self.close(code=4401)
            return
        self.principal = principal

    async def disconnect(self, code: int) -> None:
        # Leaving stops following; the run is cancelled after the resume grace if nobody returns.
        if self.forwarder is not None:
            self.forwarder.cancel()

    async def send_json(self, payload: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(payload, default=str))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.principal is None:
            return
        try:
            data = json.loads(text_data if text_data is not None else (bytes_data or b"").decode())
        except (json.JSONDecodeError, UnicodeDecodeError):
            await self.send_json(
                error_event(error_payload("Send a JSON object", code="invalid_request", status=400))
            )
            return
        if not isinstance(data, dict):
            await self.send_json(
                error_event(error_payload("Send a JSON object", code="invalid_request", status=400))
            )
            return
        problems = json_text_problems(data)
        if problems:
            # Answered like any other refused exchange (exchange_prepare's errors): error, complete.
            await self.send_json(error_event(ValidationFailed(problems).payload()))
            await self.send_json(COMPLETE)
            return
        if data.get("type") == "cancel":
            if self.run is not None:
                self.run.cancel()
            return
        if self.forwarder is not None and not self.forwarder.done():
            await self.send_json(
                error_event(
                    error_payload(
                        "A reply is still streaming; wait for its status complete, or send a cancel",
                        code="conflict",
                        status=409,
                    )
                )
            )
            return
        try:
            enforce(self.principal, self.access, Context(body_reader=lambda: data))  # runs no query
            prepared = await database_sync_to_async(exchange_prepare)(principal=self.principal, body=data)
        except Exception as exc:
            error = to_application_error(exc) or ApplicationError(
                "Internal server error", code="internal_error", status=500
            )
            await self.send_json(error_event(error.payload()))
            await self.send_json(COMPLETE)
            return
        self.run = await run_start(Exchange(prepared, to_thread=worker_thread))
        self.forwarder = asyncio.get_running_loop().create_task(self._forward(self.run))

    async def _forward(self, run: Run) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            async for item in run.follow(0, keepalive=3600):
                if item is not None:
                    await self.send_json(item[1])
            await self.send_json(COMPLETE)


def _handshake_header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None
