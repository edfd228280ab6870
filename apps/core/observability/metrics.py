"""The platform's Prometheus metrics, and their exposition for /metrics.

In a process layout with several workers, each writes its figures to PROMETHEUS_MULTIPROC_DIR
(prometheus_client's multiprocess mode, chosen by that variable before prometheus_client is first
imported) and /metrics sums them across processes, each process's written in batches at most a
second apart (multiprocess.py). `prepare_multiprocess_dir` is for the launcher:
it empties the folder once, before the workers start, so no figure of a previous run is counted.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from django.conf import settings

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # prometheus_client writes there from its first figure
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from apps.core.observability import multiprocess

disable_created_metrics()  # the *_created series double a scrape and say little here


# A multi-process value adds in memory and is written to its file in batches (multiprocess.py): each
# write of prometheus_client's own costs a lock, a system call and the file's update, ~10 a request.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    values.ValueClass = multiprocess.BufferedValue

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Request latencies from a cached read (~1 ms) to a long tool call; fewer buckets, cheaper writes.
_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0)
_LLM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144)

HTTP_REQUESTS = Counter(
    "slop_http_requests", "HTTP requests answered, by route pattern", ["method", "route", "status"]
)
# A loop route's requests (apps.tenants.loop): answered on the event loop, or handed to a thread
# (the key or a tenant's snapshot not cached in the process yet, tracing on, a refusal of the
# middleware's). Mostly "answered" is the fast path working.
HTTP_EVENT_LOOP = Counter(
    "slop_http_event_loop_requests",
    "Requests of loop routes, by what the event loop did with them",
    ["route", "outcome"],
)
EVENT_LOOP_GATHERED = Histogram(
    "slop_event_loop_gathered_calls",
    "Calls of concurrent requests sent in one round trip from the event loop (apps.core.loop_io)",
    ["call"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
HTTP_DURATION = Histogram(
    "slop_http_request_duration_seconds",
    "Time to the response (its first byte for streams), by route pattern",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
DB_QUERY_DURATION = Histogram(
    "slop_db_query_duration_seconds", "Time of one SQL statement", ["alias"], buckets=_FAST_BUCKETS
)
DB_ERRORS = Counter("slop_db_errors", "SQL statements that failed", ["alias", "error"])
CACHE_DURATION = Histogram(
    "slop_cache_operation_duration_seconds",
    "Time of one cache operation",
    ["cache", "operation"],
    buckets=_FAST_BUCKETS,
)
CACHE_ERRORS = Counter("slop_cache_errors", "Cache operations that failed (outages)", ["cache", "operation"])
DEPENDENCY_UNAVAILABLE = Counter(
    "slop_dependency_unavailable",
    "Requests answered 503 or served degraded because a dependency failed",
    ["dependency", "outcome"],
)
LLM_TOKENS = Histogram(
    "slop_llm_token_usage",
    "Tokens of one model call (gen_ai.client.token.usage)",
    ["provider", "model", "token_type"],
    buckets=_TOKEN_BUCKETS,
)
LLM_TIME_TO_FIRST_TOKEN = Histogram(
    "slop_llm_time_to_first_token_seconds",
    "From sending a model call to its first streamed piece",
    ["provider", "model"],
    buckets=_LLM_BUCKETS,
)
LLM_DURATION = Histogram(
    "slop_llm_call_duration_seconds",
    "One model call, first byte sent to last received (gen_ai.client.operation.duration)",
    ["provider", "model", "outcome"],
    buckets=_LLM_BUCKETS,
)
TOOL_CALLS = Counter("slop_tool_calls", "Tool calls run, by tool (webhook tools as one)", ["tool", "outcome"])
TOOL_DURATION = Histogram(
    "slop_tool_call_duration_seconds", "Time of one tool call", ["tool"], buckets=_LATENCY_BUCKETS
)


def enabled() -> bool:
    """SLOP_METRICS: off, no figure is taken (the request, DB and cache timings included)."""
    return bool(settings.SLOP_METRICS)


def model_label(model: str) -> str:
    """A platform model keeps its name; a model a tenant configured is one label, so a tenant's
    naming never becomes a series of its own."""
    platform = {"echo", *settings.SLOP_OPENAI_MODELS, *settings.SLOP_ANTHROPIC_MODELS}
    return model if model in platform else "tenant_configured"


def tool_label(tool_id: str, *, builtin: bool) -> str:
    return tool_id if builtin else "webhook"


class CeleryQueueCollector(Collector):
    """`slop_celery_queue_length`: messages waiting in each Celery queue, read from the Redis broker
    when /metrics is scraped (one LLEN a queue, with the Redis timeouts of settings)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        broker = str(getattr(settings, "CELERY_BROKER_URL", "") or "")
        if not broker.startswith(("redis://", "rediss://", "unix://")):
            return
        import redis

        family = GaugeMetricFamily(
            "slop_celery_queue_length", "Messages waiting in a Celery queue", labels=["queue"]
        )
        up = GaugeMetricFamily("slop_celery_broker_up", "Whether the broker answered the last scrape")
        client = redis.Redis.from_url(
            broker,
            socket_timeout=settings.SLOP_REDIS_SOCKET_TIMEOUT,
            socket_connect_timeout=settings.SLOP_REDIS_CONNECT_TIMEOUT,
        )
        try:
            for queue in celery_queues():
                family.add_metric([queue], float(cast(int, client.llen(queue))))
            up.add_metric([], 1.0)
        except redis.RedisError:
            up.add_metric([], 0.0)
        finally:
            client.close()
        yield family
        yield up


def celery_queues() -> list[str]:
    default = str(getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery"))
    routed = {
        str(route["queue"])
        for route in (getattr(settings, "CELERY_TASK_ROUTES", None) or {}).values()
        if isinstance(route, dict) and "queue" in route
    }
    return sorted({default, *routed})


_queue_collector = CeleryQueueCollector()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition() -> bytes:
    """The text format of every metric of every process (Prometheus's /metrics body)."""
    registry: CollectorRegistry
    if multiprocess_dir():
        multiprocess.flush()  # this process's own figures current; the others' at most a second old
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    body = generate_latest(registry)
    # The queue collector reads the broker at scrape time: kept out of REGISTRY, so a process that
    # never serves /metrics never asks Redis.
    extra = CollectorRegistry(auto_describe=False)
    extra.register(_queue_collector)
    return body + generate_latest(extra)


def prepare_multiprocess_dir(path: Path) -> dict[str, str]:
    """For a launcher, before it starts the processes: an empty folder for their figures, and the
    environment variable that points them at it."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return {"PROMETHEUS_MULTIPROC_DIR": str(path)}


class Timer:
    """Seconds since it was made: `observe` into a histogram child."""

    __slots__ = ("started",)

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def observe(self, histogram: Any) -> None:
        histogram.observe(self.elapsed())
