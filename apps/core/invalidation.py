"""Cross-process cache invalidation: a change saved in one process reaches every process's caches.

Per-process caches (API keys, tenant snapshots) save a query per request; their cost was the time a
change took to reach the other processes (their TTL). Here a process that changes something calls
`invalidate(topic, value)` once the change is committed: its own handler runs at once, and the
message goes out on a Redis pub/sub channel that every process with REDIS_URL listens to from a
thread of its own, whose handler runs within milliseconds.

`listening()` says whether this process hears the others right now. A cache may trust an entry
for long only while it does; when the subscription breaks, every handler is called with `None`
(forget everything) and caches fall back to their short TTL until it is back.

Without Redis there is one process (tests, `manage.py` commands with eager Celery): the local
handler is all there is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

CHANNEL = "slop:invalidate"
Handler = Callable[[str | None], None]

_handlers: dict[str, Handler] = {}
_state_lock = threading.Lock()
_listener_pid: int | None = None
_subscribed = threading.Event()
_publisher: Any = None


def register(topic: str, handler: Handler) -> None:
    """`handler(value)` runs for every invalidate(topic, value), in whichever process it was
    called, and `handler(None)` when this process may have missed some."""
    _handlers[topic] = handler


def invalidate(topic: str, value: str) -> None:
    """Forget `value` of `topic` here and in every other process (call it after the commit)."""
    _dispatch(topic, value)
    if not settings.REDIS_URL:
        return
    try:
        _publisher_client().publish(CHANNEL, f"{topic}\0{value}")
    except Exception as exc:  # Redis down: the other processes are not subscribed either
        logger.warning("Could not publish the invalidation of %s %s: %s", topic, value, exc)


def listening() -> bool:
    """Whether this process hears the other processes' invalidations now (starts listening)."""
    if not settings.REDIS_URL:
        return False
    _ensure_listener()
    return _subscribed.is_set()


def _dispatch(topic: str, value: str | None) -> None:
    handler = _handlers.get(topic)
    if handler is not None:
        handler(value)


def _forget_everything() -> None:
    for handler in list(_handlers.values()):
        handler(None)


def _client(**options: Any) -> Any:
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, **options)


def _publisher_client() -> Any:
    global _publisher
    if _publisher is None:
        _publisher = _client(socket_timeout=2)
    return _publisher


def _ensure_listener() -> None:
    global _listener_pid, _publisher
    pid = os.getpid()
    if _listener_pid == pid:
        return
    with _state_lock:
        if _listener_pid == pid:
            return
        # A forked child (a Celery pool process) has its parent's flags but not its thread.
        _subscribed.clear()
        _publisher = None
        _listener_pid = pid
        threading.Thread(target=_listen, name="slop-invalidation", daemon=True).start()


def _listen() -> None:
    while True:
        pubsub = None
        try:
            pubsub = _client(socket_timeout=30, health_check_interval=10).pubsub(
                ignore_subscribe_messages=True
            )
            pubsub.subscribe(CHANNEL)
            while True:
                message = pubsub.get_message(timeout=5.0)
                if not _subscribed.is_set() and pubsub.subscribed:
                    # What changed before the subscription took effect is not trusted either.
                    _forget_everything()
                    _subscribed.set()
                if message is None or message.get("type") != "message":
                    continue
                topic, _, value = message["data"].decode().partition("\0")
                _dispatch(topic, value)
        except Exception as exc:
            if _subscribed.is_set():
                logger.warning("Cache invalidations are not heard (%s); short cache times until back", exc)
            _subscribed.clear()
            _forget_everything()
        finally:
            if pubsub is not None:
                with contextlib.suppress(Exception):
                    pubsub.close()
        time.sleep(1.0)
