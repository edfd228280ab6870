"""The container health check against the real server, with a production ALLOWED_HOSTS."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import pytest

from slop_platform import healthcheck
from tests.e2e.conftest import LiveServer, start_server, stop_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def production_server(
    django_db_setup: None, django_db_blocker: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        server = start_server({"ALLOWED_HOSTS": "slop.example.com"}, tmp_path_factory.mktemp("prod"))
    yield server
    stop_server(server)


def test_the_check_passes_where_a_request_to_127_0_0_1_is_refused(production_server: LiveServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", production_server.port, timeout=10)
    connection.request("GET", "/readyz")
    assert connection.getresponse().status == 400  # what the old healthcheck got: never healthy
    connection.close()

    assert healthcheck.check(production_server.port, "slop.example.com") is None
    problem = healthcheck.check(production_server.port, "other.example.com")
    assert problem is not None and "answered 400" in problem
    assert healthcheck.check(production_server.port, "") == (
        "ALLOWED_HOSTS is empty: the server refuses every request"
    )
