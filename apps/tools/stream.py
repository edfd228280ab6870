"""GET /tools/jobs/:id/stream: a job's status changes as Server-Sent Events.

Events arrive through the channel layer (Redis in production, so a worker's updates reach every
web process); the stream also re-reads the job every few seconds, so a missed event, a dead worker
(see apps/tools/jobs.py) or an in-memory layer never leaves a client waiting forever. Each event is
`id: <n>` + `data: {"type": "status", "job_id", "status", …}`; after a final status comes
`data: [DONE]`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request

from apps.core.errors import ApplicationError, error_payload
from apps.core.serializers import ServerSentEventSerializer
from apps.tenants.api import JsonOrStreamNegotiation, SlopView
from apps.tools.access import job_in_url
from apps.tools.events import job_event, job_group
from apps.tools.models import ToolJob
from apps.tools.selectors import tool_job_get
from apps.tools.services import tool_job_for

KEEPALIVE_SECONDS = 15.0
MAX_STREAM_SECONDS = 3600.0
_TERMINAL = {str(status) for status in ToolJob.TERMINAL}


def _frame(event_id: int, data: dict[str, Any]) -> bytes:
    return f"id: {event_id}\ndata: {json.dumps(data)}\n\n".encode()


def _current(tenant_id: int, job_id: str) -> ToolJob:
    return tool_job_for(job=tool_job_get(tenant=tenant_id, job_id=job_id))


async def _events(job_id: str, tenant_id: int) -> AsyncIterator[bytes]:
    layer = get_channel_layer()
    channel = await layer.new_channel() if layer is not None else None
    group = job_group(tenant_id, job_id)
    if layer is not None and channel is not None:
        await layer.group_add(group, channel)
    counter = 0
    last: tuple[str, int] | None = None
    started = last_sent = time.monotonic()
    try:
        # Subscribed first, then read: no update can fall between the two.
        job = await sync_to_async(_current)(tenant_id, job_id)
        pending: dict[str, Any] | None = job_event(job)
        while True:
            if pending is not None and (pending["status"], pending["attempts"]) != last:
                counter += 1
                last = (pending["status"], pending["attempts"])
                last_sent = time.monotonic()
                yield _frame(counter, pending)
                if pending["status"] in _TERMINAL:
                    yield b"data: [DONE]\n\n"
                    return
            pending = None
            if time.monotonic() - started > MAX_STREAM_SECONDS:
                counter += 1
                yield _frame(
                    counter,
                    {
                        "type": "error",
                        **error_payload(
                            "Stream time limit reached; read the job again", code="stream_timeout", status=504
                        ),
                    },
                )
                return
            try:
                if layer is None or channel is None:
                    raise TimeoutError
                message = await asyncio.wait_for(
                    layer.receive(channel), timeout=settings.TOOLS_STREAM_POLL_SECONDS
                )
                pending = message.get("event")
            except TimeoutError:
                job = await sync_to_async(_current)(tenant_id, job_id)
                pending = job_event(job)
                if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
                    last_sent = time.monotonic()
                    yield b": keepalive\n\n"
    except ApplicationError as error:
        counter += 1
        yield _frame(counter, {"type": "error", **error.payload()})
    finally:
        if layer is not None and channel is not None:
            await layer.group_discard(group, channel)


class ToolJobStreamView(SlopView):
    """Through the same base as every view (authentication, the declared access check, the rate
    limit); the handler returns at once and the stream's body runs on the event loop (one
    coroutine per open stream, no thread held while it waits)."""

    info_description = "Stream a tool job's status changes (SSE)"
    content_negotiation_class = JsonOrStreamNegotiation
    access = {"GET": job_in_url("read", "execute")}

    @extend_schema(
        responses={(200, "text/event-stream"): ServerSentEventSerializer}
    )  # + apps/tools/openapi.py
    def get(self, request: Request, job_id: str) -> StreamingHttpResponse:
        job: ToolJob = self.target
        response = StreamingHttpResponse(
            _events(job.public_id, job.tenant_id), content_type="text/event-stream; charset=utf-8"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response
