"""The front's WSGI bridge (apps/core/serving.ThreadedWSGI), driven as an ASGI server drives it:
one-piece answers, request bodies, streaming answers and large uploads reach the client whole."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

from apps.core.serving import BUFFERED_BODY_BYTES, ThreadedWSGI


def _scope(method: str = "GET", path: str = "/", body: bytes = b"") -> dict[str, Any]:
    headers = [(b"host", b"testserver"), (b"x-thing", b"a"), (b"x-thing", b"b")]
    if body:
        headers.append((b"content-length", str(len(body)).encode()))
    return {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"q=1",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


def _serve(app: Any, scope: dict[str, Any], body: bytes = b"", piece: int = 0) -> tuple[int, dict, bytes]:
    pieces = [body[i : i + piece] for i in range(0, len(body), piece)] if piece and body else [body]
    sent: list[dict[str, Any]] = []
    received.clear()

    async def receive() -> dict[str, Any]:
        received.append(1)
        chunk = pieces.pop(0) if pieces else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(pieces)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    assert start["type"] == "http.response.start"
    assert all(m["type"] == "http.response.body" for m in sent[1:])
    assert not sent[-1].get("more_body", False)
    return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


received: list[int] = []  # one entry per receive() the server answered


class Streamed:
    """What Django's StreamingHttpResponse looks like to a WSGI server."""

    streaming = True

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.closed_on: str | None = None
        self.iterated_on: set[str] = set()

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.iterated_on.add(threading.current_thread().name)
            yield chunk

    def close(self) -> None:
        self.closed_on = threading.current_thread().name


def test_a_request_and_its_answer_cross_whole() -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        seen["body"] = environ["wsgi.input"].read()
        seen["thread"] = threading.current_thread().name
        start_response("201 Created", [("Content-Type", "application/json"), ("X-Request-ID", "r1")])
        return [b'{"a":', b"1}"]

    status, headers, body = _serve(
        ThreadedWSGI(app, threads=2), _scope("POST", "/memory", b'{"k":1}'), b'{"k":1}'
    )
    assert (status, body) == (201, b'{"a":1}')
    assert headers[b"content-type"] == b"application/json" and headers[b"x-request-id"] == b"r1"
    assert seen["body"] == b'{"k":1}' and seen["CONTENT_LENGTH"] == "7"
    assert seen["PATH_INFO"] == "/memory" and seen["QUERY_STRING"] == "q=1"
    assert seen["HTTP_X_THING"] == "a,b" and seen["REMOTE_ADDR"] == "127.0.0.1"
    assert seen["thread"].startswith("WSGI")  # never the event loop's thread


def test_a_body_sent_in_pieces_is_read_whole() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [environ["wsgi.input"].read()]

    payload = bytes(range(256)) * 40
    assert (
        _serve(ThreadedWSGI(app, threads=1), _scope("PUT", "/x", payload), payload, piece=1000)[2] == payload
    )


def test_a_large_upload_is_streamed_to_the_handler() -> None:
    reads: list[int] = []
    received_at_start: list[int] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        received_at_start.append(len(received))
        total = 0
        while chunk := environ["wsgi.input"].read(65536):
            reads.append(len(chunk))
            total += len(chunk)
        start_response("200 OK", [])
        return [str(total).encode()]

    payload = b"x" * (BUFFERED_BODY_BYTES + 100_000)
    _, _, body = _serve(
        ThreadedWSGI(app, threads=1), _scope("POST", "/resources", payload), payload, piece=50_000
    )
    assert body == str(len(payload)).encode() and len(reads) > 1
    assert received_at_start[0] < len(received)  # it started before the body had all arrived


def test_a_streaming_answer_is_sent_piece_by_piece_and_closed_on_its_thread() -> None:
    response = Streamed([b"one ", b"", b"two ", b"three"])

    def app(environ: dict[str, Any], start_response: Any) -> Streamed:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return response

    status, _, body = _serve(ThreadedWSGI(app, threads=1), _scope())
    assert (status, body) == (200, b"one two three")
    assert response.closed_on is not None and response.iterated_on == {response.closed_on}


def _echo_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"thread:" + body]


async def _unused_asgi(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not this path")


def _front(answer: Any, seen: list[bytes]) -> Any:
    from apps.core.serving import LoopRoute, ServingFront

    async def offered(scope: dict[str, Any], body: bytes) -> Any:
        seen.append(body)
        return await answer(body)

    route = LoopRoute(accepts=lambda scope: scope["path"] == "/hot", answer=offered)
    return ServingFront(
        wsgi=_echo_wsgi, asgi_http=_unused_asgi, websocket=_unused_asgi, streaming=[], loop=[route], threads=2
    )


def test_a_loop_route_is_given_the_whole_body_and_answers() -> None:
    async def answer(body: bytes) -> Any:
        return 201, [(b"content-type", b"text/plain")], b"loop:" + body

    seen: list[bytes] = []
    status, _headers, content = _serve(
        _front(answer, seen), _scope("POST", "/hot", b"x" * 1000), b"x" * 1000, 300
    )
    assert (status, content, seen) == (201, b"loop:" + b"x" * 1000, [b"x" * 1000])


def test_what_a_loop_route_hands_on_reaches_the_thread_path_with_its_body() -> None:
    async def answer(body: bytes) -> Any:
        return None

    seen: list[bytes] = []
    status, _headers, content = _serve(
        _front(answer, seen), _scope("POST", "/hot", b"abc" * 100), b"abc" * 100, 7
    )
    assert (status, content, seen) == (200, b"thread:" + b"abc" * 100, [b"abc" * 100])
    # Bodiless, other paths: as before.
    assert _serve(_front(answer, seen), _scope("GET", "/hot"))[2] == b"thread:"
    assert _serve(_front(answer, seen), _scope("POST", "/cold", b"z"), b"z")[2] == b"thread:z"
    assert seen[1:] == [b""]


def test_a_body_too_large_to_hold_is_not_offered_to_the_loop() -> None:
    async def answer(body: bytes) -> Any:
        raise AssertionError("offered")

    seen: list[bytes] = []
    big = b"y" * (BUFFERED_BODY_BYTES + 1)
    status, _headers, content = _serve(_front(answer, seen), _scope("POST", "/hot", big), big, 65536)
    assert (status, len(content), seen) == (200, len(b"thread:") + len(big), [])


def test_the_lifespan_shutdown_awaits_every_closing_step() -> None:
    from apps.core.serving import ServingFront

    closed: list[str] = []

    async def failing() -> None:
        closed.append("failing")
        raise RuntimeError("closing failed")

    async def closing() -> None:
        closed.append("closing")

    front = ServingFront(
        wsgi=_echo_wsgi,
        asgi_http=_unused_asgi,
        websocket=_unused_asgi,
        streaming=[],
        on_startup=[lambda: closed.append("started")],
        on_shutdown=[failing, closing],
    )
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    asyncio.run(front({"type": "lifespan"}, receive, send))
    assert closed == ["started", "failing", "closing"]
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
