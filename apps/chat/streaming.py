"""Transports for stream runs: SSE (`id:` + `data:` lines, `[DONE]`, keep-alive comments) and NDJSON.

The SSE event id is `<run id>:<n>`: a client that reconnects with it as `Last-Event-ID` gets events
n+1… of the same run, whichever process it reaches (with Redis).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connections
from django.http import StreamingHttpResponse

from apps.chat.engine import Exchange
from apps.chat.runs import Item, remote_store, run_get, run_start
from apps.chat.services import PreparedExchange

NDJSON = "application/x-ndjson"


def worker_thread(func: Any) -> Any:
    # A detached run outlives its request, so its database work cannot use the request's thread.
    return database_sync_to_async(func, thread_sensitive=False)


def _dumps(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"), default=str)


async def _encode(run_id: str, items: AsyncIterator[Item], *, ndjson: bool) -> AsyncIterator[bytes]:
    # Browsers reconnect after 1 s, well inside the resume grace. Sent with the first event rather
    # than alone: a lone small write ahead of it can hold the first token back a delayed ACK.
    prefix = b"" if ndjson else b"retry: 1000\n\n"
    async for item in items:
        if item is None:
            chunk = b"\n" if ndjson else b": keep-alive\n\n"
        elif ndjson:
            chunk = (_dumps(item[1]) + "\n").encode()
        else:
            chunk = f"id: {run_id}:{item[0]}\ndata: {_dumps(item[1])}\n\n".encode()
        yield prefix + chunk
        prefix = b""
    if prefix:
        yield prefix
    if not ndjson:
        yield b"data: [DONE]\n\n"


async def _new_run_items(prepared: PreparedExchange) -> AsyncIterator[Item]:
    run = await run_start(Exchange(prepared, to_thread=worker_thread))
    async for item in run.follow(0, settings.SLOP_SSE_KEEPALIVE_SECONDS):
        yield item


async def _resumed_items(tenant_id: int, run_id: str, after: int) -> AsyncIterator[Item]:
    keepalive = settings.SLOP_SSE_KEEPALIVE_SECONDS
    run = run_get(tenant_id=tenant_id, run_id=run_id)
    if run is not None:
        async for item in run.follow(after, keepalive):
            yield item
        return
    store = remote_store()
    if store is not None:
        async for item in store.follow(tenant_id, run_id, after, keepalive):
            yield item


def _release_database() -> None:
    """Django keeps a request's connection until the response ends, which for a stream is minutes:
    hand it back to the pool now (the run uses its own, briefly, when it stores the reply)."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def _response(body: AsyncIterator[bytes], *, ndjson: bool, run_id: str) -> StreamingHttpResponse:
    _release_database()
    response = StreamingHttpResponse(body, content_type=NDJSON if ndjson else "text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events through unbuffered
    response["X-SLOP-Run"] = run_id
    return response


def new_stream_response(prepared: PreparedExchange, *, ndjson: bool) -> StreamingHttpResponse:
    body = _encode(prepared.chat_id, _new_run_items(prepared), ndjson=ndjson)
    return _response(body, ndjson=ndjson, run_id=prepared.chat_id)


def resumed_stream_response(
    *, tenant_id: int, run_id: str, after: int, ndjson: bool
) -> StreamingHttpResponse:
    body = _encode(run_id, _resumed_items(tenant_id, run_id, after), ndjson=ndjson)
    return _response(body, ndjson=ndjson, run_id=run_id)
