"""The front door over real HTTP, with DEBUG on (make run) and off: JSON errors on every SLOP path,
chunked bodies read (and capped), and no credential in the server's log."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import websockets

from apps.tenants.models import Tenant
from apps.tenants.services import api_key_create
from tests.e2e.conftest import LiveServer, start_server, stop_server

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module", params=[True, False], ids=["debug", "production"])
def strict_server(
    request: pytest.FixtureRequest,
    django_db_setup: None,
    django_db_blocker: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveServer]:
    """A server that answers only to Host: localhost, as a real deployment's ALLOWED_HOSTS does."""
    env = {
        "SLOP_DEBUG": "true" if request.param else "false",
        "ALLOWED_HOSTS": "localhost",
        "SLOP_LOG_LEVEL": "INFO",  # the request lines, whose redaction a test reads
    }
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        server = start_server(env, tmp_path_factory.mktemp("strict"))
    yield server
    stop_server(server)


def _get(server: LiveServer, path: str, **kwargs: object) -> httpx.Response:
    headers = {"Host": "localhost", **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    return httpx.get(f"{server.url}{path}", headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]


def _assert_json_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("application/json"), response.text[:300]
    body = response.json()
    assert body["status"] == status and body["code"] and isinstance(body["error"], str)
    return body


def _key() -> str:
    tenant = Tenant.objects.create(slug=f"door-{Tenant.objects.count()}", name="Door")
    return api_key_create(tenant=tenant, scopes="*").plaintext


def test_unknown_routes_wrong_methods_and_bad_hosts_are_json(strict_server: LiveServer) -> None:
    body = _assert_json_error(_get(strict_server, "/nope"), 404)
    assert body["error"] == "No endpoint at /nope"
    deleted = httpx.delete(f"{strict_server.url}/info", headers={"Host": "localhost"}, timeout=10)
    assert _assert_json_error(deleted, 405)["code"] == "method_not_allowed"
    refused = _assert_json_error(_get(strict_server, "/info", headers={"Host": "evil.example"}), 400)
    assert "evil.example" in str(refused["error"])
    assert _get(strict_server, "/admin/login/").headers["content-type"].startswith("text/html")


def test_a_chunked_body_is_read(strict_server: LiveServer) -> None:
    key = _key()
    headers = {"Host": "localhost", "Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def chunks() -> Iterator[bytes]:  # a generator body: httpx sends Transfer-Encoding: chunked
        yield b'{"expression": '
        yield b'"6 * 7"}'

    response = httpx.post(
        f"{strict_server.url}/tools/calculator", content=chunks(), headers=headers, timeout=30
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 200, response.text
    assert response.json()["result"] == 42


def test_a_chunked_body_over_the_limit_is_a_413(strict_server: LiveServer) -> None:
    key = _key()
    headers = {"Host": "localhost", "Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def chunks() -> Iterator[bytes]:  # 3 MiB against the 2 MiB default limit of /chat
        yield b'{"messages": [{"content": "'
        for _ in range(48):
            yield b"x" * 65536
        yield b'"}]}'

    response = httpx.post(f"{strict_server.url}/chat", content=chunks(), headers=headers, timeout=30)
    body = _assert_json_error(response, 413)
    assert body["code"] == "payload_too_large" and body["limit_bytes"] == 2 * 1024 * 1024
    assert response.headers["x-request-id"].startswith("req_")


async def _websocket_with_ticket(server: LiveServer, ticket: str) -> None:
    """The browser way: the ticket in the handshake's URL (refused: this ticket was never issued)."""
    async with websockets.connect(
        f"ws://localhost:{server.port}/chat/ws?ticket={ticket}", host="127.0.0.1"
    ) as socket_:
        await asyncio.wait_for(socket_.recv(), timeout=10)


def test_no_credential_reaches_the_log(strict_server: LiveServer) -> None:
    key = _key()
    ticket = "tkt_" + "T" * 32
    for path in (
        f"/memory?api_key={key}",
        f"/info?key={key}",
        "/info?key=not-a-key-but-secret",
        f"/chat/stream?ticket={ticket}&content=hi",
        f"/nope?token={key}",
        f"/memory/{key}",
    ):
        _get(strict_server, path)
    response = _get(strict_server, "/info", headers={"Authorization": f"Bearer {key}x"})
    assert response.status_code == 401
    asyncio.run(_websocket_with_ticket(strict_server, ticket))
    log = strict_server.log()
    assert "/memory?api_key=[redacted]" in log  # the requests were logged, without their secrets
    assert key not in log and key[:-6] not in log
    assert ticket not in log and "not-a-key-but-secret" not in log


def test_headers_over_16_kib_are_a_json_431(strict_server: LiveServer) -> None:
    key = _key()
    big = {"Authorization": f"Bearer {key}", "X-Padding": "p" * (16 * 1024)}
    body = _assert_json_error(_get(strict_server, "/info", headers=big), 431)
    assert body["code"] == "headers_too_large"
    # Just under the limit, the request is served.
    fits = {"Authorization": f"Bearer {key}", "X-Padding": "p" * (12 * 1024)}
    assert _get(strict_server, "/info", headers=fits).status_code == 200
    # The connection stays usable for the next request (no bare status and a dropped socket).
    with httpx.Client(base_url=strict_server.url, headers={"Host": "localhost"}, timeout=10) as client:
        assert client.get("/info", headers=big).status_code == 431
        assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b"",  # no part at all
        b'--BOUNDARY\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nno end',
        b"this is not multipart at all",
        b"--BOUNDARY\r\nno headers, no blank line--BOUNDARY--\r\n",
    ],
    ids=["empty", "unterminated", "garbage", "headerless-part"],
)
def test_a_malformed_multipart_body_is_a_json_400(strict_server: LiveServer, body: bytes) -> None:
    headers = {
        "Host": "localhost",
        "Authorization": f"Bearer {_key()}",
        "Content-Type": "multipart/form-data; boundary=BOUNDARY",
    }
    response = httpx.post(f"{strict_server.url}/resources", content=body, headers=headers, timeout=10)
    error = _assert_json_error(response, 400)
    assert error["code"] in ("invalid_request", "parse_error", "validation_error"), error
