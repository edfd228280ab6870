"""Every SQL statement timed (slop_db_query_duration_seconds), and bounded inside a request.

The server-side `statement_timeout` (settings.SLOP_DB_STATEMENT_TIMEOUT) ends a slow statement on
a server that works. A server that does not answer at all (stopped, frozen, cut off by a network
that drops nothing but delivers nothing) cannot cancel anything, and the socket would wait for
ever: so a statement run for a request also gets a client-side deadline a little later, past which
a watchdog thread shuts the connection's socket down. The blocked call then fails at once with an
OperationalError, which the request answers as 503 (apps/core/degraded.py), and the broken
connection is discarded instead of going back to the pool.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

from apps.core.observability import context, metrics

logger = logging.getLogger("slop.db")

GRACE_SECONDS = 2.0  # past the server's own statement_timeout, which should have fired first

_deadlines: dict[int, tuple[float, int]] = {}  # ticket -> (monotonic deadline, socket fd)
_tickets = itertools.count()
_watchdog: threading.Thread | None = None
_watchdog_lock = threading.Lock()


def _watch() -> None:
    while True:
        time.sleep(0.25)
        now = time.monotonic()
        for ticket, (deadline, fd) in list(_deadlines.items()):
            if deadline <= now and _deadlines.pop(ticket, None) is not None:
                logger.warning("A database statement ran past its deadline; closing its connection")
                shut_down(fd)


def shut_down(fd: int) -> None:
    # shutdown() acts on the socket itself, so a duplicate of the descriptor reaches the one the
    # blocked thread waits on, which then returns at once.
    with contextlib.suppress(OSError):
        duplicate = socket.socket(fileno=socket.dup(fd))
        try:
            duplicate.shutdown(socket.SHUT_RDWR)
        finally:
            duplicate.close()


def _ensure_watchdog() -> None:
    global _watchdog
    if _watchdog is None:
        with _watchdog_lock:
            if _watchdog is None:
                _watchdog = threading.Thread(target=_watch, name="slop-db-watchdog", daemon=True)
                _watchdog.start()


def client_deadline_seconds() -> float | None:
    timeout = float(getattr(settings, "SLOP_DB_STATEMENT_TIMEOUT", 0) or 0)
    return timeout + GRACE_SECONDS if timeout > 0 else None


def timed_execute(execute: Callable[..., Any], sql: str, params: Any, many: bool, ctx: dict[str, Any]) -> Any:
    """Django's execute wrapper protocol (connection.execute_wrappers)."""
    connection = ctx["connection"]
    ticket = None
    limit = client_deadline_seconds()
    if limit is not None and context.in_request():
        raw = connection.connection
        fd = raw.fileno() if raw is not None else -1
        if fd >= 0:
            _ensure_watchdog()
            ticket = next(_tickets)
            _deadlines[ticket] = (time.monotonic() + limit, fd)
    started = time.perf_counter()
    try:
        return execute(sql, params, many, ctx)
    except Exception as exc:
        metrics.DB_ERRORS.labels(connection.alias, type(exc).__name__).inc()
        raise
    finally:
        if ticket is not None:
            _deadlines.pop(ticket, None)
        if metrics.enabled():
            metrics.DB_QUERY_DURATION.labels(connection.alias).observe(time.perf_counter() - started)


def install(sender: Any, connection: Any, **kwargs: Any) -> None:
    """connection_created: the wrapper goes on each connection object once (it is kept across the
    reconnects of that object)."""
    if timed_execute not in connection.execute_wrappers:
        connection.execute_wrappers.append(timed_execute)
