"""A web server process: `python -m slop_platform.web [--host H] [--port P] [--workers N]`.

The one command every layout runs (`make run`'s serve, compose's `web`, the Dockerfile, the e2e
tests, bench/): granian serving `slop_platform.asgi:application` (apps/core/serving.py: plain
requests on Django's WSGI handler, streams and WebSocket on the ASGI side) with SLOP_WEB_WORKERS
worker processes (default: the cores this process may use). It replaces itself with granian (exec),
so its pid is the server's and SIGTERM stops it and its workers gracefully.

It loads the settings first, so a misconfiguration is the same one line and exit status 2 as every
other entry point (slop_platform.startup), not a worker crashing over and over.
"""

from __future__ import annotations

import argparse
import os
import sys

from slop_platform.env import env_int, env_str
from slop_platform.startup import embedding_runtime_or_exit, settings_or_exit

APPLICATION = "slop_platform.asgi:application"


# granian's default, with the query string, which apps.core.redaction redacts.
ACCESS_LOG_FORMAT = (
    '[%(time)s] %(addr)s - "%(method)s %(path)s?%(query_string)s %(protocol)s" %(status)d %(dt_ms).3f'
)


def granian_argv(
    host: str,
    port: int,
    workers: int,
    *,
    access_log: bool = True,
    max_concurrency: int = 4096,
    backlog: int = 2048,
) -> list[str]:
    access = ["--access-log", "--access-log-fmt", ACCESS_LOG_FORMAT] if access_log else ["--no-access-log"]
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        # One event loop thread per worker; Django's threads are the WSGI pool (SLOP_WEB_THREADS).
        "--runtime-threads",
        "1",
        # uvloop's event loop: a GET /memory/:key answered on the loop (its PostgreSQL and Redis
        # round trips) cost ~25 % less CPU than on asyncio's (README, "Serving layout").
        "--loop",
        "uvloop",
        # Requests a worker serves at once (SSE streams and WebSocket each hold one; plain requests
        # queue for SLOP_WEB_THREADS threads inside) and the accept queue: SLOP_WEB_MAX_CONCURRENCY,
        # SLOP_WEB_BACKLOG. granian's default (backlog / workers) capped 2 workers at 1,024 streams.
        "--backpressure",
        str(max_concurrency),
        "--backlog",
        str(backlog),
        "--log-level",
        env_str("SLOP_WEB_LOG_LEVEL", "warning") or "warning",
        # A worker that dies (killed, out of memory) is started again instead of leaving a hole.
        "--respawn-failed-workers",
        "--workers-kill-timeout",
        "20",
        *access,
        APPLICATION,
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m slop_platform.web", description=__doc__)
    parser.add_argument("--host", default=env_str("HOST", "127.0.0.1"))
    parser.add_argument("--port", "-p", type=int, default=env_int("PORT", 8000, minimum=1))
    parser.add_argument("--workers", type=int, default=None, help="default: SLOP_WEB_WORKERS (the cores)")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slop_platform.settings")
    settings_or_exit()
    from django.conf import settings

    # Settings are loaded, apps are not: the provider needs only settings and the model files.
    embedding_runtime_or_exit()

    workers = args.workers or settings.SLOP_WEB_WORKERS
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Several processes answer /metrics in turn: each writes its figures to one folder that
        # /metrics sums (prometheus_client's multiprocess mode); `make run` sets its own.
        import tempfile
        from pathlib import Path

        from apps.core.observability.metrics import prepare_multiprocess_dir

        os.environ.update(prepare_multiprocess_dir(Path(tempfile.mkdtemp(prefix="slop-metrics-"))))
    command = granian_argv(
        args.host,
        args.port,
        workers,
        access_log=settings.SLOP_WEB_ACCESS_LOG,
        max_concurrency=settings.SLOP_WEB_MAX_CONCURRENCY,
        backlog=settings.SLOP_WEB_BACKLOG,
    )
    sys.stdout.flush()
    os.execv(command[0], command)  # noqa: S606 - our own interpreter and arguments


if __name__ == "__main__":
    main()
