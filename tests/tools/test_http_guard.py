"""The one outbound client: SSRF guard at connect time, timeouts, size cap, no redirects."""

from __future__ import annotations

import asyncio
import ipaddress
import time

import httpx
import pytest
from django.test import override_settings

from apps.core.http import (
    DestinationRefused,
    ResponseTooLarge,
    address_refusal,
    guarded_async_client,
    guarded_client,
    outbound_url_problem,
    sdk_client,
)
from tests.tools.webhook_server import WebhookServer


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",  # shared address space (CGNAT)
        "169.254.169.254",  # cloud metadata
        "0.0.0.0",  # noqa: S104
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "2002:7f00:0001::1",  # 6to4 around 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 around 169.254.169.254
    ],
)
def test_internal_addresses_are_refused(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address), allow_private=False) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address), allow_private=False) is None


@pytest.mark.parametrize("address", ["169.254.169.254", "::ffff:169.254.169.254", "224.0.0.1", "0.0.0.0"])  # noqa: S104
def test_link_local_multicast_and_unspecified_stay_refused_when_private_is_allowed(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address), allow_private=True) is not None


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "::1"])
def test_private_is_allowed_when_the_setting_says_so(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address), allow_private=True) is None


@override_settings(OUTBOUND_HTTP_ALLOW_PRIVATE=False)
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "2130706433", "0x7f.1"])
def test_a_refused_destination_gets_no_connection(webhook_server: WebhookServer, host: str) -> None:
    port = webhook_server.httpd.server_address[1]
    with guarded_client() as client, pytest.raises(DestinationRefused):
        client.post(f"http://{host}:{port}/echo", json={})
    assert webhook_server.connections == 0
    assert webhook_server.received == []


@override_settings(OUTBOUND_HTTP_ALLOW_PRIVATE=False)
def test_the_async_client_refuses_too(webhook_server: WebhookServer) -> None:
    async def call() -> None:
        async with guarded_async_client() as client:
            await client.post(f"{webhook_server.url}/echo", json={})

    with pytest.raises(DestinationRefused):
        asyncio.run(call())
    assert webhook_server.connections == 0


def test_metadata_address_is_refused_even_in_development() -> None:
    with guarded_client(timeout=2) as client, pytest.raises(DestinationRefused, match="link-local"):
        client.get("http://169.254.169.254/latest/meta-data/")


def test_allowed_private_destination_works(webhook_server: WebhookServer) -> None:
    with guarded_client() as client:
        response = client.post(f"{webhook_server.url}/plain", content=b"{}")
    # The server refuses unsigned calls: it was reached.
    assert response.status_code == 401
    assert webhook_server.connections == 1


def test_redirects_are_not_followed(webhook_server: WebhookServer) -> None:
    from apps.tools.webhooks import signature

    body = b"{}"
    with guarded_client() as client:
        response = client.post(
            f"{webhook_server.url}/redirect",
            content=body,
            headers={"X-SLOP-Signature": signature("", int(time.time()), body)},
        )
    assert response.status_code == 302
    assert response.headers["location"].startswith("http://169.254.169.254")
    assert len(webhook_server.received) == 1


def test_total_timeout(webhook_server: WebhookServer) -> None:
    from apps.tools.webhooks import signature

    body = b'{"tool": "t", "call_id": "c", "parameters": {}}'
    started = time.monotonic()
    with guarded_client(timeout=0.5) as client, pytest.raises(httpx.TimeoutException):
        client.post(
            f"{webhook_server.url}/slow",
            content=body,
            headers={"X-SLOP-Signature": signature("", int(time.time()), body)},
        )
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
def test_response_size_cap(webhook_server: WebhookServer, path: str) -> None:
    from apps.tools.webhooks import signature

    body = b"{}"
    with guarded_client(max_response_bytes=64 * 1024) as client, pytest.raises(ResponseTooLarge):
        client.post(
            f"{webhook_server.url}{path}",
            content=body,
            headers={"X-SLOP-Signature": signature("", int(time.time()), body)},
        )


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://example.com/x", "http"),
        ("http:///nohost", "no host"),
        ("http://user:pw@example.com/", "credentials"),
        ("http://169.254.169.254/latest", "link-local"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
        ("http://example.com:99999/", "valid URL"),
    ],
)
def test_url_problems_at_registration(url: str, fragment: str) -> None:
    problem = outbound_url_problem(url)
    assert problem is not None and fragment in problem


def test_a_public_url_is_fine_at_registration() -> None:
    assert outbound_url_problem("https://tools.example.com/weather") is None


def test_the_async_client_reaches_an_allowed_destination(webhook_server: WebhookServer) -> None:
    async def call() -> int:
        async with guarded_async_client() as client:
            response = await client.post(f"{webhook_server.url}/plain", content=b"{}")
            return response.status_code

    assert asyncio.run(call()) == 401  # the server answered (it refuses unsigned calls)


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_sdks_take_the_guarded_client(sdk: str) -> None:
    """How /chat uses it: tenant-configured base URLs go through the guard."""
    if sdk == "openai":
        import openai

        client = openai.OpenAI(
            api_key="x", base_url="http://169.254.169.254/v1", http_client=sdk_client(), max_retries=0
        )
        with pytest.raises(openai.APIConnectionError) as caught:
            client.models.list()
    else:
        import anthropic

        client = anthropic.Anthropic(
            api_key="x", base_url="http://169.254.169.254", http_client=sdk_client(), max_retries=0
        )
        with pytest.raises(anthropic.APIConnectionError) as caught:
            client.models.list()
    assert isinstance(caught.value.__cause__, DestinationRefused)


@override_settings(OUTBOUND_HTTP_ALLOW_PRIVATE=False)
def test_the_sdk_flavour_refuses_with_no_connection(webhook_server: WebhookServer) -> None:
    port = webhook_server.httpd.server_address[1]
    with sdk_client() as client, pytest.raises(DestinationRefused):
        client.get(f"http://localhost:{port}/v1/models")
    assert webhook_server.connections == 0


def test_the_sdk_flavour_connects_and_caps(webhook_server: WebhookServer) -> None:
    import openai

    client = openai.OpenAI(
        api_key="x", base_url=f"{webhook_server.url}/v1", http_client=sdk_client(), max_retries=0
    )
    with pytest.raises(openai.APIStatusError):  # it got there: the test server has no GET routes
        client.models.list()
    assert webhook_server.connections == 1
    from apps.tools.webhooks import signature

    with sdk_client(max_response_bytes=64 * 1024) as capped, pytest.raises(ResponseTooLarge):
        capped.post(
            f"{webhook_server.url}/big-chunked",
            content=b"{}",
            headers={"X-SLOP-Signature": signature("", int(time.time()), b"{}")},
        )
