"""Cross-process cache invalidation: a change committed by one process reaches every web process's
caches within milliseconds, through PostgreSQL's LISTEN/NOTIFY.

Per-process caches (API keys) save a query per request; their cost was the time a change took to
reach the other processes (their TTL). A process that changes something calls
`invalidate(topic, value)` in the transaction that changes it: its own handler runs at once (and
again at commit), and PostgreSQL delivers the notification to every listener when, and only if,
the transaction commits. Every process that writes has the database, so `manage.py` commands,
Celery tasks and the admin reach the web processes alike, Redis or not.

Web processes listen (`start_listening()`, called at the ASGI lifespan startup) on a connection of
their own, from a thread. `listening()` says whether this process hears the others now: a cache
may trust an entry for long only while it does. When the connection breaks (PostgreSQL restarted
or unreachable), every handler is called with `None` (forget everything), caches fall back to
their short TTL, and the thread connects again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connection, connections, transaction

logger = logging.getLogger(__name__)

CHANNEL = "slop_invalidate"
APPLICATION_NAME = "slop-invalidation"  # the listeners' connections, in pg_stat_activity
Handler = Callable[[str | None], None]

_handlers: dict[str, Handler] = {}
_state_lock = threading.Lock()
_listener_pid: int | None = None
_subscribed = threading.Event()


def register(topic: str, handler: Handler) -> None:
    """`handler(value)` runs for every invalidate(topic, value), in whichever process it was
    called, and `handler(None)` whenever this process may have missed some."""
    _handlers[topic] = handler


def invalidate(topic: str, value: str) -> None:
    """Forget `value` of `topic` here now, and in every listening process when the current
    transaction commits (at once outside one)."""
    _dispatch(topic, value)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, f"{topic}\t{value}"])
    # A read between the change and its commit may have cached the old row again.
    transaction.on_commit(lambda: _dispatch(topic, value))


def listening() -> bool:
    """Whether this process hears the other processes' invalidations now."""
    return _subscribed.is_set() and _listener_pid == os.getpid()


def start_listening() -> None:
    """Listen from a thread of this process (once per process; a forked child starts its own)."""
    global _listener_pid
    pid = os.getpid()
    with _state_lock:
        if _listener_pid == pid:
            return
        _subscribed.clear()
        _listener_pid = pid
        threading.Thread(target=_listen, args=(pid,), name="slop-invalidation", daemon=True).start()


def stop_listening() -> None:
    """Stop this process's listener within a second (tests: its connection would keep the test
    database open)."""
    global _listener_pid
    with _state_lock:
        _listener_pid = None
        _subscribed.clear()


def _dispatch(topic: str, value: str | None) -> None:
    handler = _handlers.get(topic)
    if handler is not None:
        handler(value)


def _forget_everything() -> None:
    for handler in list(_handlers.values()):
        handler(None)


def _connect() -> Any:
    import psycopg

    params = connections["default"].get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params["application_name"] = APPLICATION_NAME
    params.setdefault("connect_timeout", 5)  # settings set one (SLOP_DB_CONNECT_TIMEOUT)
    return psycopg.connect(**params, autocommit=True)


def _listen(pid: int) -> None:
    while _listener_pid == pid:
        listener = None
        try:
            listener = _connect()
            listener.execute(f"LISTEN {CHANNEL}")
            # Whatever changed before the LISTEN took effect is not trusted either.
            _forget_everything()
            _subscribed.set()
            checked = time.monotonic()
            while _listener_pid == pid:
                for notify in listener.notifies(timeout=1.0):
                    topic, _, value = notify.payload.partition("\t")
                    _dispatch(topic, value)
                if time.monotonic() - checked > 10:
                    listener.execute("SELECT 1")  # a connection that died quietly fails here
                    checked = time.monotonic()
        except Exception as exc:
            if _listener_pid != pid:
                break
            if _subscribed.is_set():
                logger.warning("Cache invalidations are not heard (%s); short cache times until back", exc)
            _subscribed.clear()
            _forget_everything()
        finally:
            if listener is not None:
                with contextlib.suppress(Exception):
                    listener.close()
        time.sleep(1.0)
