"""`make run`: the platform as production runs it, on one machine, with nothing to install.

Migrates, ensures the demo tenant, then starts and watches: the embedded Redis (unless REDIS_URL
is set), a Celery worker and Celery beat, and the web server (slop_platform.web: granian with
SLOP_WEB_WORKERS processes), each a process of its own with the same environment, as the `worker`,
`beat` and `web` services of compose.yaml. Ctrl-C (or SIGTERM) stops them (the web server, beat and
the worker, then Redis, then the embedded PostgreSQL); so does any of them exiting on its own.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from apps.core.observability.metrics import prepare_multiprocess_dir
from slop_platform.embedded import embedded_server_pid, embedded_server_release, embedded_server_restart
from slop_platform.embedded_redis import EmbeddedRedis, EmbeddedRedisError, embedded_redis_start
from slop_platform.healthcheck import answers
from slop_platform.processes import Child, die_with_parent, spawn

DEVELOPMENT_MARKER_TEXT = (
    "This data folder belongs to `make run`: processes that use it for the embedded database\n"
    "(no DATABASE_URL) run in development mode unless SLOP_DEBUG says otherwise.\n"
)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        # As the web server binds: connections of a previous run in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _where(url: str) -> str:
    """A URL without its credentials, for the start-up lines."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}{parts.path}" if parts.hostname else parts.path


def _close_database_pools() -> None:
    for connection in connections.all():
        connection.close()
        close_pool = getattr(connection, "close_pool", None)  # PostgreSQL with a pool (Django 5.1+)
        if close_pool is not None:
            close_pool()


class Command(BaseCommand):
    help = (
        "Migrate, ensure the demo tenant, and run the platform: embedded Redis, a Celery worker and "
        "beat, and the web server (HTTP, streams, WebSocket). Ctrl-C stops them all and the embedded "
        "PostgreSQL."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-demo", action="store_true", help="do not create the demo tenant")
        parser.add_argument(
            "--concurrency", type=int, default=2, help="Celery worker processes (compose.yaml: 2)"
        )

    def line(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        if not _port_free(host, port):
            raise CommandError(f"Port {port} on {host} is in use (PORT=9000 make run picks another)")
        call_command("migrate", interactive=False, verbosity=0)
        if settings.EMBEDDED_DATABASE:
            self.line(f"PostgreSQL: embedded (pgserver), data in {settings.DATA_DIR / 'postgres'}")
        else:
            self.line(f"PostgreSQL: {_where(str(settings.DATABASE_URL))} (DATABASE_URL)")
        if not options["no_demo"]:
            call_command("ensure_demo_tenant")
            if settings.SLOP_DEMO_PUBLIC_LOOPBACK:
                self.line(
                    "Key-less requests from this machine act on the demo tenant's public surface "
                    "(SLOP_DEMO_PUBLIC_LOOPBACK=false turns it off)"
                )
        if settings.DEBUG and settings.EMBEDDED_DATABASE:
            settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
            settings.DEVELOPMENT_MARKER.write_text(DEVELOPMENT_MARKER_TEXT)
        _close_database_pools()  # serve needs no connection from here on, nor the pool's threads

        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        children: list[Child] = []
        redis: EmbeddedRedis | None = None
        failure: str | None = None
        try:
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            # One folder for the figures of every process (web, Celery worker), emptied per run,
            # so /metrics sums them all (prometheus_client's multiprocess mode).
            metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or str(settings.DATA_DIR / "metrics")
            env.update(prepare_multiprocess_dir(Path(metrics_dir)))
            if settings.REDIS_URL:
                self.line(f"Redis: {_where(settings.REDIS_URL)} (REDIS_URL)")
            else:
                try:
                    redis = embedded_redis_start(settings.DATA_DIR, preexec_fn=die_with_parent)
                except EmbeddedRedisError as exc:
                    raise CommandError(str(exc)) from None
                env["REDIS_URL"] = redis.url
                self.line(
                    f"Redis: embedded (redis-server {redis.version}, pid {redis.process.pid}) on "
                    f"127.0.0.1:{redis.port}: Celery broker, channel layer, cache; log {redis.log_path}"
                )
            children = self._start_children(env, host, port, options["concurrency"])
            failure = self._watch(children, host, port, stop)
        finally:
            self._stop(children, redis)
        if failure:
            raise SystemExit(1)

    def _watch(self, children: list[Child], host: str, port: int, stop: threading.Event) -> str | None:
        """Until Ctrl-C or SIGTERM; returns why it stopped early if one of the children exited or
        the embedded PostgreSQL died and could not be started again."""
        serving = False
        while not stop.is_set():
            for child in children:
                if not child.running():
                    failure = f"{child.name} exited with status {child.process.returncode}; stopping"
                    self.stderr.write(failure)
                    return failure
            database_failure = self._supervise_database()
            if database_failure:
                self.stderr.write(database_failure)
                return database_failure
            if not serving and answers(host, port):
                serving = True
                self.line(f"Serving on http://{host}:{port} (Ctrl-C stops everything)")
            stop.wait(0.2 if not serving else 0.5)
        return None

    def _supervise_database(self) -> str | None:
        """The embedded PostgreSQL, killed or crashed, is started again on the same data; the
        processes' pools replace their broken connections on their next requests. None if it
        runs (again), else why it could not be restarted."""
        if not settings.EMBEDDED_DATABASE or embedded_server_pid(settings.DATA_DIR) is not None:
            return None
        self.stderr.write("PostgreSQL (embedded) is not running; starting it again")
        try:
            pid = embedded_server_restart(settings.DATA_DIR)
        except Exception as exc:
            return f"PostgreSQL (embedded) could not be started again: {exc}; stopping"
        self.line(f"PostgreSQL: embedded, started again (pid {pid})")
        return None

    def _start_children(self, env: dict[str, str], host: str, port: int, concurrency: int) -> list[Child]:
        python, cwd = sys.executable, Path(settings.BASE_DIR)
        celery = [python, "-m", "celery", "-A", "slop_platform", "--quiet"]
        worker_options = ["--loglevel=WARNING", "--without-mingle", "--without-gossip", "-n", "make-run@%h"]
        # A warm shutdown lets the running jobs finish first.
        worker = spawn(
            "Celery worker",
            [*celery, "worker", f"--concurrency={concurrency}", *worker_options],
            env=env,
            cwd=cwd,
            stop_timeout=15.0,
        )
        self.line(f"Celery worker: pid {worker.pid}, {concurrency} pool processes (tool jobs)")
        schedule = settings.DATA_DIR / "celerybeat-schedule"
        beat = spawn(
            "Celery beat",
            [*celery, "beat", "--loglevel=WARNING", f"--schedule={schedule}"],
            env=env,
            cwd=cwd,
        )
        tasks = ", ".join(sorted(settings.CELERY_BEAT_SCHEDULE))
        self.line(f"Celery beat: pid {beat.pid} ({tasks})")
        workers = settings.SLOP_WEB_WORKERS
        web = spawn(
            "Web server",
            [
                python,
                "-m",
                "slop_platform.web",
                "--host",
                host,
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=env,
            cwd=cwd,
            stop_timeout=30.0,
        )
        self.line(
            f"Web server: pid {web.pid}, granian, {workers} worker processes x {settings.SLOP_WEB_THREADS} "
            "threads (HTTP; streams and WebSocket on ASGI)"
        )
        return [web, beat, worker]

    def _stop(self, children: list[Child], redis: EmbeddedRedis | None) -> None:
        names = [child.name for child in children] + (["Redis"] if redis else [])
        if settings.EMBEDDED_DATABASE:
            names.append("PostgreSQL")
        self.line(f"Stopping {', '.join(names)}…")
        # All at once: each takes seconds to tear its interpreter down (torch in the web workers), and none
        # needs another to stop. Redis goes last, since the worker hands unfinished jobs back to it.
        for child in children:
            child.terminate()
        for child in children:
            child.wait_stopped()
        if redis is not None:
            Child("Redis", redis.process).stop()
        _close_database_pools()
        if settings.EMBEDDED_DATABASE and not embedded_server_release(settings.DATA_DIR):
            self.line("PostgreSQL keeps running: another process (a manage.py command?) still uses it")
        self.line("Stopped.")
