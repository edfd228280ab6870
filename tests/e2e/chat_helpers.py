"""Clients for the chat streams as a browser or SDK would see them: SSE parsing over httpx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class SseItem:
    id: str | None
    data: str | None
    comment: str | None = None

    @property
    def event(self) -> dict[str, Any]:
        assert self.data is not None and self.data != "[DONE]"
        return json.loads(self.data)


def sse_items(response: httpx.Response) -> Iterator[SseItem]:
    """Yields each dispatched event (and each comment) as it arrives."""
    event_id: str | None = None
    data: list[str] = []
    for line in response.iter_lines():
        if line == "":
            if data:
                yield SseItem(event_id, "\n".join(data))
            event_id, data = None, []
        elif line.startswith(":"):
            yield SseItem(None, None, comment=line[1:].strip())
        elif line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


def read_stream(response: httpx.Response) -> tuple[list[SseItem], bool]:
    """Every event up to `[DONE]`; (events, saw_done)."""
    items = []
    for item in sse_items(response):
        if item.comment is not None:
            continue
        if item.data == "[DONE]":
            return items, True
        items.append(item)
    return items, False


def auth(key: str, scope: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    if scope is not None:
        headers["X-SLOP-Scope"] = scope
    return headers
