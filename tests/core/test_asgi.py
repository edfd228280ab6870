"""The ASGI entry point runs the whole middleware chain and a sync view in one hop to a thread."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from asgiref import sync

from slop_platform.asgi import application


def call(path: str, method: str = "GET", query_string: bytes = b"") -> tuple[int, bytes]:
    async def run() -> tuple[int, bytes]:
        sent: list[dict[str, Any]] = []
        received = False

        async def receive() -> dict[str, Any]:
            nonlocal received
            if not received:
                received = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query_string,
            "root_path": "",
            "headers": [(b"host", b"localhost")],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 80),
        }
        await application(scope, receive, send)
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return status, body

    return asyncio.run(run())


def test_middleware_and_a_sync_view_run_in_one_thread_without_hopping_back(monkeypatch) -> None:
    hops_back: list[str] = []
    threads: set[int] = set()
    original = sync.AsyncToSync.__call__

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        hops_back.append(getattr(self.awaitable, "__qualname__", "?"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(sync.AsyncToSync, "__call__", counting)
    from apps.core import middleware
    from slop_platform import views

    for cls, name in ((middleware.PlatformMiddleware, "__call__"), (views.HealthzView, "get")):
        wrapped = getattr(cls, name)

        def spy(*args: Any, _wrapped: Any = wrapped, **kwargs: Any) -> Any:
            threads.add(threading.get_ident())
            return _wrapped(*args, **kwargs)

        monkeypatch.setattr(cls, name, spy)
    status, body = call("/healthz")
    assert status == 200, body
    assert hops_back == []  # Django's async chain would hop back to the loop for the inner handler
    assert len(threads) == 1 and threading.get_ident() not in threads


@pytest.mark.parametrize(("path", "status"), [("/nope", 404), ("/healthz", 200)])
def test_errors_and_answers_still_come_back_as_json(path: str, status: int) -> None:
    got, body = call(path)
    assert got == status
    assert body.startswith(b"{")


def test_a_query_string_that_is_not_utf8_is_a_json_400() -> None:
    # Daphne refuses raw non-ASCII in a request line itself; another ASGI server may pass it on.
    status, body = call("/info", query_string=b"q=\xff\xfe")
    assert status == 400
    assert json.loads(body) == {
        "error": "The query string is not valid UTF-8",
        "code": "invalid_request",
        "status": 400,
    }
