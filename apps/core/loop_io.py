"""PostgreSQL and Redis from the event loop, for the requests a web process answers without a
thread (apps.core.serving's `LoopRoute`s): an asyncio connection pool and an asyncio Redis client
per event loop, with the same bounded waits as Django's side (settings: SLOP_DB_CONNECT_TIMEOUT,
SLOP_DB_POOL_TIMEOUT, SLOP_DB_STATEMENT_TIMEOUT and its client-side grace, SLOP_REDIS_*), and the
same figures (slop_db_query_duration_seconds, slop_cache_operation_duration_seconds).

Their failures are raised as Django's side raises them, so a request answers them alike
(apps.core.degraded): a database that cannot be reached or does not answer in time is Django's
OperationalError (a 503), Redis's are redis-py's ConnectionError and TimeoutError.

The connections are made with the parameters Django's connection uses (the embedded server's
socket included), in UTC as Django's are, and prepare a statement they run often.

`Gathered` sends the calls of many concurrent requests as one round trip (group commit): a
process's requests for the rate limit's counters and for memory items went each its own way,
and the client's work per round trip (the pool, the protocol, the task switches) was more than
half of what a `GET /memory/:key` cost a web process.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db import OperationalError as DatabaseOperationalError

from apps.core.observability import metrics
from apps.core.observability.db import client_deadline_seconds, shut_down

_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
_redis: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = weakref.WeakKeyDictionary()

# Connections per web process for the event loop's queries: each is held for one statement of a
# few hundred microseconds, and the loop runs one request's Python at a time.
POOL_MAX_SIZE = 4


def _connection_params() -> dict[str, Any]:
    params = dict(connections[DEFAULT_DB_ALIAS].get_connection_params())
    for django_only in ("cursor_factory", "context", "server_side_binding", "pool", "prepare_threshold"):
        params.pop(django_only, None)
    options = params.get("options", "")
    params["options"] = f"{options} -c TimeZone=UTC".strip()  # Django's connections are in UTC
    # As Django's: each statement its own transaction, so a read is one round trip, not three
    # (BEGIN, the statement, the COMMIT the pool sends when the connection comes back).
    params["autocommit"] = True
    return params


async def _configure(connection: Any) -> None:
    from psycopg.types.string import TextLoader

    # As Django's connections do: jsonb arrives as its text, which JSONField.from_db_value parses.
    connection.adapters.register_loader("jsonb", TextLoader)


async def _pool() -> Any:
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        from psycopg_pool import AsyncConnectionPool

        pool = AsyncConnectionPool(
            kwargs=_connection_params(),
            min_size=1,
            max_size=POOL_MAX_SIZE,
            timeout=settings.SLOP_DB_POOL_TIMEOUT,
            open=False,
            name="slop-loop",
            configure=_configure,
        )
        _pools[loop] = pool
        await pool.open(wait=False)
    return pool


async def fetch_one(sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The first row of `sql` (placeholders %s), or None (fetch_all's errors and deadline)."""
    rows = await _fetch(sql, params, many=False)
    return rows[0] if rows else None


async def fetch_all(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Every row of `sql` (placeholders %s). A database that fails, cannot give a connection
    within the pool's timeout or does not answer within the statement's deadline is Django's
    OperationalError; the broken connection is not reused.

    The deadline is the thread side's (apps.core.observability.db): past the server's own
    statement_timeout and its grace, the connection's socket is shut down, and the waiting read
    fails at once. (Cancelling the coroutine instead has psycopg cancel the query on a server that
    does not answer, which held a request 16 s past a 6 s deadline.)"""
    return await _fetch(sql, params, many=True)


async def _fetch(sql: str, params: tuple[Any, ...], *, many: bool) -> list[tuple[Any, ...]]:
    import psycopg

    loop = asyncio.get_running_loop()
    deadline = client_deadline_seconds()
    started = time.perf_counter()
    try:
        pool = await _pool()
        async with pool.connection() as connection:
            watchdog = loop.call_later(deadline, shut_down, connection.pgconn.socket) if deadline else None
            try:
                async with connection.cursor() as cursor:
                    await cursor.execute(sql, params)
                    if many:
                        rows: list[tuple[Any, ...]] = await cursor.fetchall()
                    else:
                        row = await cursor.fetchone()
                        rows = [] if row is None else [row]
            finally:
                if watchdog is not None:
                    watchdog.cancel()
    except psycopg.Error as exc:
        metrics.DB_ERRORS.labels(DEFAULT_DB_ALIAS, type(exc).__name__).inc()
        raise DatabaseOperationalError(str(exc)) from exc
    finally:
        if metrics.enabled():
            _query_duration().observe(time.perf_counter() - started)
    return rows


_figures: list[Any] = []


def _query_duration() -> Any:
    if not _figures:
        _figures.append(metrics.DB_QUERY_DURATION.labels(DEFAULT_DB_ALIAS))
    return _figures[0]


def _redis_client(location: str) -> Any:
    loop = asyncio.get_running_loop()
    clients = _redis.setdefault(loop, {})
    client = clients.get(location)
    if client is None:
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(
            location,
            socket_timeout=settings.SLOP_REDIS_SOCKET_TIMEOUT,
            socket_connect_timeout=settings.SLOP_REDIS_CONNECT_TIMEOUT,
        )
        clients[location] = client
    return client


async def redis_script(location: str, script: str, keys: list[str], args: list[Any]) -> Any:
    """`script` (Lua) run by the Redis at `location`: EVALSHA, loading it on the first call."""
    client = _redis_client(location)
    registered = getattr(client, "_slop_scripts", None)
    if registered is None:
        registered = client._slop_scripts = {}
    runner = registered.get(script)
    if runner is None:
        runner = registered[script] = client.register_script(script)
    return await runner(keys=keys, args=args)


async def close() -> None:
    """Closes this loop's pool and Redis clients (a process's shutdown; tests)."""
    loop = asyncio.get_running_loop()
    pool = _pools.pop(loop, None)
    if pool is not None:
        await pool.close()
    for client in _redis.pop(loop, {}).values():
        await client.aclose()


Item = TypeVar("Item")
Result = TypeVar("Result")


class Gathered(Generic[Item, Result]):
    """One call to `send(items)` (a result for each item, in order) for every call made while the
    last one was out, per event loop. A call made when none is out is sent at once, alone, by the
    caller; those made meanwhile wait, and one task sends them together when it is back, and
    again until none waits: under load a round trip carries all the requests that came during the
    last, and alone a request waits for nothing.

    `name` labels slop_event_loop_gathered_calls, the number of calls each round trip carried. An
    error of `send` is each waiting call's error. A caller that is cancelled (its client gone)
    takes nothing away from the others' round trip."""

    def __init__(self, name: str, send: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]]) -> None:
        self._send = send
        self._sizes = metrics.EVENT_LOOP_GATHERED.labels(name)  # slop_event_loop_gathered_calls
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue[Item, Result]] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, item: Item) -> Result:
        loop = asyncio._get_running_loop()
        if loop is None:  # driven by hand (tests): nobody to wait with
            return (await self._send([item]))[0]
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _Queue()
        if queue.sending:
            waiting: asyncio.Future[Result] = loop.create_future()
            queue.waiting.append((item, waiting))
            return await waiting
        queue.sending = True
        try:
            if metrics.enabled():
                self._sizes.observe(1)
            return (await self._send([item]))[0]
        finally:
            if queue.waiting:
                queue.sender = loop.create_task(self._send_waiting(queue))
            else:
                queue.sending = False

    async def _send_waiting(self, queue: _Queue[Item, Result]) -> None:
        try:
            while queue.waiting:
                batch, queue.waiting = queue.waiting, []
                if metrics.enabled():
                    self._sizes.observe(len(batch))
                try:
                    results = await self._send([item for item, _ in batch])
                except Exception as exc:  # each waiting call's error
                    for _, waiting in batch:
                        if not waiting.done():
                            waiting.set_exception(exc)
                    continue
                except BaseException:  # this task cancelled (the loop closing): so are the calls
                    queue.waiting[:0] = batch
                    raise
                for (_, waiting), result in zip(batch, results, strict=True):
                    if not waiting.done():
                        waiting.set_result(result)
        finally:
            for _, waiting in queue.waiting:
                waiting.cancel()
            queue.waiting, queue.sending, queue.sender = [], False, None


class _Queue(Generic[Item, Result]):
    __slots__ = ("sender", "sending", "waiting")

    def __init__(self) -> None:
        self.sending = False
        self.sender: asyncio.Task[None] | None = None  # held, so the task is not collected
        self.waiting: list[tuple[Item, asyncio.Future[Result]]] = []
