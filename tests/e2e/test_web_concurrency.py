"""SLOP_WEB_MAX_CONCURRENCY reaches the web server: a process serves that many requests at once
(each open SSE stream or WebSocket is one) and holds the next until one ends. granian's own
default (its backlog / workers: 512 a worker on 2 cores) held the 1,025th of 2,000 SSE clients."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import LiveServer, start_server, stop_server

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def server_of_two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server({"SLOP_WEB_MAX_CONCURRENCY": "2"}, tmp_path_factory.mktemp("concurrency"))
    yield server
    stop_server(server)


def held_request(port: int) -> socket.socket:
    """A request the server has begun and cannot finish: its body is still on the way."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        b"POST /memory HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{"
    )
    return sock


def answers_within(server: LiveServer, seconds: float) -> bool:
    try:
        return httpx.get(f"{server.url}/healthz", timeout=seconds).status_code == 200
    except httpx.TimeoutException:
        return False


def test_a_process_serves_the_configured_number_of_requests_at_once(server_of_two: LiveServer) -> None:
    first = held_request(server_of_two.port)
    try:
        assert answers_within(server_of_two, 10)  # one of two in use: the next is served
        second = held_request(server_of_two.port)
        try:
            assert not answers_within(server_of_two, 2)  # both in use: the next waits
        finally:
            second.close()
        assert answers_within(server_of_two, 10)  # one ended: served again
    finally:
        first.close()
