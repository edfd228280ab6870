"""X-Forwarded-For is believed only from SLOP_TRUSTED_PROXIES; nothing else can pick a client's
address, so a random header per request does not escape the per-address limit."""

from __future__ import annotations

import secrets

import pytest
from django.test import Client
from django.test.utils import override_settings

from apps.core.client_address import client_address

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_rate_window")]


def _random_ip() -> str:
    return ".".join(str(secrets.randbelow(254) + 1) for _ in range(4))


def test_an_untrusted_peer_is_the_client_whatever_it_forwards() -> None:
    assert client_address("203.0.113.9", "1.2.3.4") == "203.0.113.9"
    assert client_address("203.0.113.9", None) == "203.0.113.9"


@override_settings(SLOP_TRUSTED_PROXIES=["10.0.0.0/8", "192.0.2.1"])
def test_behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() -> None:
    # what the client wrote itself (left) is never believed past an address we do not trust
    assert client_address("10.0.0.5", "6.6.6.6, 198.51.100.4, 10.1.1.1") == "198.51.100.4"
    assert client_address("192.0.2.1", "198.51.100.4") == "198.51.100.4"
    assert client_address("10.0.0.5", "10.0.0.7") == "10.0.0.7"  # all ours: the left-most
    assert client_address("10.0.0.5", "not-an-ip") == "10.0.0.5"
    assert client_address("::ffff:10.0.0.5", "198.51.100.4") == "198.51.100.4"


@override_settings(ANON_RATE_LIMIT_PER_MINUTE=3)
def test_a_random_x_forwarded_for_per_request_still_hits_the_anonymous_limit() -> None:
    statuses = [Client(HTTP_X_FORWARDED_FOR=_random_ip()).get("/info").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


@override_settings(ANON_RATE_LIMIT_PER_MINUTE=2, SLOP_TRUSTED_PROXIES=["127.0.0.1"])
def test_clients_behind_a_trusted_proxy_have_limits_of_their_own() -> None:
    first = Client(HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert [first.get("/info").status_code for _ in range(3)] == [200, 200, 429]
    assert Client(HTTP_X_FORWARDED_FOR="198.51.100.2").get("/info").status_code == 200


def test_serve_does_not_let_the_web_server_take_addresses_from_headers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from apps.core.management.commands import serve

    started: list[list[str]] = []

    def spawn(name: str, argv: list[str], **kwargs: object) -> SimpleNamespace:
        started.append(argv)
        return SimpleNamespace(pid=0)

    monkeypatch.setattr(serve, "spawn", spawn)
    serve.Command()._start_children({}, "127.0.0.1", 8000, 1)
    web = [argv for argv in started if "slop_platform.web" in argv]
    assert web and not any("proxy" in part for part in web[0])


def test_production_images_do_not_either() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for name in ("Dockerfile", "compose.yaml"):
        assert "--proxy-headers" not in (root / name).read_text(), name
