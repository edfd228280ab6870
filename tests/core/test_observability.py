"""Metrics at /metrics, JSON log lines with the request's context, GenAI spans."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from rest_framework.test import APIClient

from apps.core.observability import context, tracing
from apps.core.observability.logs import ConsoleFormatter, JsonFormatter
from apps.llm.loop import LoopState, ToolOutcome, run_tool_loop
from apps.llm.providers.base import ChatMessage, CompletionRequest, ToolCall
from apps.llm.providers.echo import EchoProvider

pytestmark = pytest.mark.django_db


def sample(body: str, name: str, **labels: str) -> float:
    """The value of one series in Prometheus's text format (0 when absent)."""
    for line in body.splitlines():
        if line.startswith(f"{name}{{"):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            if found == labels:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def scrape(**extra: Any) -> str:
    response = APIClient().get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


# --- /metrics -------------------------------------------------------------------------------


def test_a_request_is_counted_under_its_route_pattern_without_key_or_tenant(
    alice_client: Any, alice: Any
) -> None:
    assert alice_client.post("/memory", {"key": "user/prefs", "value": 1}, format="json").status_code == 200
    series = {"method": "GET", "route": "memory/<path:key>", "status": "200"}
    before = sample(scrape(), "slop_http_requests_total", **series)

    assert alice_client.get("/memory/user/prefs").status_code == 200
    assert alice_client.get("/memory/user/prefs").status_code == 200

    body = scrape()
    assert sample(body, "slop_http_requests_total", **series) == before + 2
    bucket = 'slop_http_request_duration_seconds_bucket{le="0.002",method="GET",route="memory/<path:key>"}'
    assert bucket in body
    leaked = [line for line in body.splitlines() if "user/prefs" in line or alice.slug in line]
    assert not leaked
    assert sample(body, "slop_db_query_duration_seconds_count", alias="default") > 0


def test_unknown_paths_share_one_label() -> None:
    client = APIClient()
    before = sample(scrape(), "slop_http_requests_total", method="GET", route="unmatched", status="404")
    assert client.get("/no/such/thing-123").status_code == 404
    body = scrape()
    after = sample(body, "slop_http_requests_total", method="GET", route="unmatched", status="404")
    assert after == before + 1
    assert "thing-123" not in body


def test_cache_operations_are_timed() -> None:
    from django.core.cache import cache

    cache.set("observability-probe", 1, 10)
    assert cache.get("observability-probe") == 1
    body = scrape()
    assert sample(body, "slop_cache_operation_duration_seconds_count", cache="default", operation="get") >= 1


def test_metrics_refuse_non_loopback_and_proxied_requests() -> None:
    client = APIClient()
    refused = client.get("/metrics", REMOTE_ADDR="203.0.113.7")
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200


def test_metrics_token_is_required_when_set(settings: Any) -> None:
    settings.SLOP_METRICS_TOKEN = "scrape-token-0123456789"
    client = APIClient()
    assert client.get("/metrics").status_code == 403  # loopback alone no longer suffices
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    allowed = client.get(
        "/metrics", REMOTE_ADDR="203.0.113.7", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789"
    )
    assert allowed.status_code == 200


def test_metrics_switched_off_is_a_404(settings: Any) -> None:
    settings.SLOP_METRICS = False
    response = APIClient().get("/metrics")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_tool_calls_and_model_figures_are_counted(client_for: Any, alice: Any) -> None:
    client = client_for(alice, "chat.write,chat.read,tools.calculator.execute")
    before = scrape()
    calls = sample(before, "slop_tool_calls_total", tool="calculator", outcome="ok")
    first = sample(before, "slop_llm_time_to_first_token_seconds_count", provider="echo", model="echo")
    content = '/tool calculator {"expression": "2+2"}'
    assert client.post("/chat", {"messages": [{"content": content}]}, format="json").status_code == 200
    after = scrape()
    assert sample(after, "slop_tool_calls_total", tool="calculator", outcome="ok") == calls + 1
    # two model calls: the one that asked for the tool, the one that answered with its result
    ttft = sample(after, "slop_llm_time_to_first_token_seconds_count", provider="echo", model="echo")
    assert ttft == first + 2
    assert sample(after, "slop_llm_token_usage_count", provider="echo", model="echo", token_type="output") > 0


# --- JSON logs ------------------------------------------------------------------------------


@contextmanager
def captured_json_logs(formatter: logging.Formatter | None = None) -> Iterator[io.StringIO]:
    """What the platform's JSON formatter (or `formatter`) writes for the root logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter or JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    with captured_json_logs() as stream:
        yield stream


def test_a_request_log_line_is_json_with_request_tenant_and_key_prefix_and_no_secret(
    make_key: Any, alice: Any, log_lines: io.StringIO
) -> None:
    key = make_key(alice, "*")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_X_REQUEST_ID="req-observed-1")
    assert client.get(f"/memory?prefix={key}").status_code == 200
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    request_lines = [line for line in lines if line["logger"] == "slop.request"]
    assert request_lines, lines
    line = request_lines[-1]
    assert line["request_id"] == "req-observed-1"
    assert line["tenant_id"] == alice.pk
    assert line["key_prefix"] and line["key_prefix"] in key
    assert line["route"] == "memory" and line["status"] == 200 and line["level"] == "info"
    assert re.match(r"\d{4}-\d\d-\d\dT", line["timestamp"])
    # What granian's access line said (it is off by default): the path as sent, and the client.
    assert line["path"] == "/memory?prefix=slop_[redacted]" and line["client"] == "127.0.0.1"
    assert key not in log_lines.getvalue()
    assert len(request_lines) == 1  # one line a request


def test_in_development_a_request_line_is_readable_with_its_request_id_and_no_secret(
    make_key: Any, alice: Any
) -> None:
    key = make_key(alice, "*")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_X_REQUEST_ID="req-console-1")
    with captured_json_logs(ConsoleFormatter()) as stream:
        assert client.get(f"/memory?prefix={key}").status_code == 200
    line = next(text for text in stream.getvalue().splitlines() if "[slop.request]" in text)
    assert "GET memory 200" in line and "request_id=req-console-1" in line
    assert f"tenant_id={alice.pk}" in line and "path='/memory?prefix=slop_[redacted]'" in line
    assert key not in stream.getvalue()


def test_a_secret_in_a_message_is_redacted_in_json(log_lines: io.StringIO) -> None:
    key = "slop_live_abcd1234_" + "S" * 32 + "C" * 6
    token = context.bind(request_id="req-x", tenant_id=7)
    try:
        logging.getLogger("slop.test").warning("upstream refused %s (Bearer %s)", key, "sk-abc.def")
    finally:
        context.unbind(token)
    text = log_lines.getvalue()
    line = json.loads(text.splitlines()[-1])
    assert line["request_id"] == "req-x" and line["tenant_id"] == 7 and line["level"] == "warning"
    assert key not in text and "sk-abc.def" not in text and "[redacted]" in line["event"]


def test_celery_task_logs_carry_the_request_context_through_a_real_broker(
    redis_url: str, request: pytest.FixtureRequest
) -> None:
    """A message sent during a request carries its id and tenant; the worker (a real one, over a
    real Redis broker) logs with them, redacted."""
    from celery import Celery
    from celery.contrib.testing.worker import start_worker

    from slop_platform.celery import app as platform_app

    # Not the current app: jobs sent by the rest of the suite keep the platform's (eager) app.
    app = Celery("observability-test", broker=redis_url, backend=None, set_as_current=False)
    app.conf.task_default_queue = "observability-test"
    request.addfinalizer(platform_app.set_current)
    secret = "slop_live_abcd1234_" + "Z" * 38

    @app.task(name="observability.log_something")
    def log_something() -> None:
        logging.getLogger("slop.task").info("working with %s", secret)

    # The worker applies settings.LOGGING as it starts (Celery's Django fixup): capture after that.
    with (
        start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10),
        captured_json_logs() as log_lines,
    ):
        token = context.bind(request_id="req-from-web", tenant_id=42, key_prefix="abcd1234")
        try:
            log_something.apply_async()
        finally:
            context.unbind(token)
        deadline = time.monotonic() + 20
        while "working with" not in log_lines.getvalue() and time.monotonic() < deadline:
            time.sleep(0.1)
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    task_lines = [line for line in lines if line.get("logger") == "slop.task"]
    assert task_lines, log_lines.getvalue()[-3000:]
    line = task_lines[0]
    assert line["request_id"] == "req-from-web" and line["tenant_id"] == 42
    assert line["key_prefix"] == "abcd1234"
    assert line["task"] == "observability.log_something"
    assert secret not in log_lines.getvalue()


# --- Traces ---------------------------------------------------------------------------------


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.uninstall()
        provider.shutdown()


def test_a_chat_records_genai_spans_under_the_request_span(
    client_for: Any, alice: Any, spans: InMemorySpanExporter
) -> None:
    client = client_for(alice, "chat.write,chat.read,tools.calculator.execute")
    content = '/tool calculator {"expression": "2+2"}'
    assert client.post("/chat", {"messages": [{"content": content}]}, format="json").status_code == 200
    finished = {span.name: span for span in spans.get_finished_spans()}
    assert {"POST chat", "chat echo", "execute_tool calculator"} <= set(finished), list(finished)
    server, model, tool = finished["POST chat"], finished["chat echo"], finished["execute_tool calculator"]
    assert server.attributes["http.route"] == "chat" and server.attributes["http.response.status_code"] == 200
    assert model.attributes["gen_ai.operation.name"] == "chat"
    assert model.attributes["gen_ai.provider.name"] == "slop.echo"
    assert model.attributes["gen_ai.request.model"] == "echo"
    assert model.attributes["gen_ai.usage.input_tokens"] > 0
    assert model.attributes["gen_ai.usage.output_tokens"] > 0
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "calculator"
    assert tool.attributes["gen_ai.tool.call.id"].startswith("call_")
    for span in (model, tool):
        assert span.parent is not None and span.parent.span_id == server.context.span_id
        assert span.context.trace_id == server.context.trace_id


def test_an_incoming_traceparent_is_continued(alice_client: Any, spans: InMemorySpanExporter) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    alice_client.get("/memory", HTTP_TRACEPARENT=f"00-{trace_id}-00f067aa0ba902b7-01")
    server = next(span for span in spans.get_finished_spans() if span.name == "GET memory")
    assert f"{server.context.trace_id:032x}" == trace_id


def test_agent_span_parents_the_model_and_tool_spans(spans: InMemorySpanExporter) -> None:
    async def run() -> None:
        async def execute(call: ToolCall) -> ToolOutcome:
            return ToolOutcome(result=4)

        messages = [ChatMessage(role="user", content="/tool calc {}")]
        request = CompletionRequest(model="echo", messages=messages)
        with tracing.agent_span("billing", name="Billing", model="echo") as agent:
            state = LoopState()
            async for _ in run_tool_loop(
                provider=EchoProvider(), request=request, execute_tool=execute, max_iterations=2, state=state
            ):
                pass
            agent.usage(state.input_tokens, state.output_tokens)

    asyncio.run(run())
    finished = {span.name: span for span in spans.get_finished_spans()}
    agent = finished["invoke_agent Billing"]
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["gen_ai.agent.id"] == "billing"
    assert agent.attributes["gen_ai.usage.output_tokens"] > 0
    for name in ("chat echo", "execute_tool calc"):
        assert finished[name].parent is not None and finished[name].parent.span_id == agent.context.span_id


def test_tracing_off_records_nothing_and_costs_a_flag() -> None:
    assert not tracing.enabled()
    span = tracing.chat_span(provider="echo", model="echo", temperature=None, max_tokens=None, parent=None)
    assert span is None
    with tracing.agent_span("x") as agent:
        agent.usage(1, 2)  # a no-op


def test_a_json_line_has_the_fields_structlog_gave_it() -> None:
    # The formatter builds from the record in one pass what structlog's chain (ProcessorFormatter,
    # which it replaced) made of it: the same fields in the same order, the traceback included.
    import structlog

    from apps.core.observability import logs

    chain = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=logs._pre_chain(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=logs._orjson_dumps),
        ],
    )
    with captured_json_logs() as ours, captured_json_logs(chain) as theirs:
        token = context.bind(request_id="req-fields", tenant_id=3)
        try:
            logging.getLogger("slop.test").info("stored %s", "k1", extra={"route": "memory", "n": 2})
            try:
                raise ValueError("broken")
            except ValueError:
                logging.getLogger("slop.test").exception("failed")
        finally:
            context.unbind(token)
    lines = [[json.loads(line) for line in stream.getvalue().splitlines()] for stream in (ours, theirs)]
    for line in lines[1]:
        line.pop("message", None)  # the stray field: the other handler formatted the record first
    for line in lines[0] + lines[1]:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", line.pop("timestamp"))
    assert lines[0] == lines[1] and [list(line) for line in lines[0]] == [list(line) for line in lines[1]]
    stored, failed = lines[0]
    assert (stored["event"], stored["level"], stored["route"], stored["tenant_id"]) == (
        "stored k1",
        "info",
        "memory",
        3,
    )
    assert failed["level"] == "error" and "ValueError: broken" in failed["exception"]


def test_the_request_line_written_without_a_record_is_the_one_the_logging_module_writes(
    make_key: Any, alice: Any
) -> None:
    """With settings.LOGGING's handler alone on the way, a request's line is written straight to
    its stream (logs.write_request_line); with any other handler there, through the logging module:
    the two lines are the same, field for field and in order, a key the client sent redacted in
    both (the straight line redacts only what the client sent, each alone)."""
    from apps.core.middleware import RequestIdLogFilter
    from apps.core.observability import logs

    key = make_key(alice, "*")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_X_REQUEST_ID=key)  # a valid id
    stream = io.StringIO()
    platform = logging.StreamHandler(stream)
    platform.setFormatter(JsonFormatter())
    platform.addFilter(RequestIdLogFilter())
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    request_logger = logging.getLogger("slop.request")
    written = []
    try:
        root.handlers[:] = [platform]
        root.setLevel(logging.INFO)
        for other in (None, logging.NullHandler()):
            if other is not None:
                root.addHandler(other)
            expected = None if other is not None else platform
            assert logs.platform_handler(request_logger, logging.INFO) is expected
            assert client.get(f"/memory/{key}?format=json").status_code == 404
            lines = [json.loads(line) for line in stream.getvalue().splitlines()]
            stream.seek(0), stream.truncate()
            written.append(next(line for line in lines if line["logger"] == "slop.request"))
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    for line in written:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line.pop("timestamp"))
        assert line.pop("duration_ms") > 0
    straight, through_logging = written
    assert list(straight.items()) == list(through_logging.items())
    assert straight["request_id"] == "slop_[redacted]" and straight["tenant_id"] == alice.pk
    assert straight["path"] == "/memory/slop_[redacted]?format=json"
    assert straight["event"] == "GET memory/<path:key> 404" and straight["key_prefix"] in key


def test_request_lines_of_one_turn_of_the_event_loop_go_out_in_one_write_at_its_end() -> None:
    from apps.core.observability import logs

    class Counted(io.StringIO):
        writes = 0

        def write(self, text: str) -> int:
            Counted.writes += 1
            return super().write(text)

    stream = Counted()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())

    def line(event: str) -> dict[str, Any]:
        return {"event": event, "level": "info", "logger": "slop.request", "method": "GET", "path": "/m"}

    async def three_requests() -> str:
        for n in range(3):
            logs.write_request_line(handler, "slop.request", "-", line(f"GET memory {n}"))
        written = stream.getvalue()
        await asyncio.sleep(0)  # the turn ends
        return written

    assert asyncio.run(three_requests()) == ""  # nothing before the turn's end
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["GET memory 0", "GET memory 1", "GET memory 2"]
    assert Counted.writes == 1
    logs.write_request_line(handler, "slop.request", "-", line("GET memory 3"))  # no loop: at once
    assert json.loads(stream.getvalue().splitlines()[-1])["event"] == "GET memory 3"
    assert Counted.writes == 2


def test_a_line_formatted_by_another_handler_first_has_no_message_field(log_lines: io.StringIO) -> None:
    other = logging.StreamHandler(io.StringIO())
    other.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    root = logging.getLogger()
    root.handlers.insert(0, other)  # it formats the record first, which sets record.message
    try:
        logging.getLogger("slop.test").warning("once")
    finally:
        root.removeHandler(other)
    line = json.loads(log_lines.getvalue().splitlines()[-1])
    assert line["event"] == "once" and "message" not in line and "asctime" not in line


def test_a_loop_closed_before_its_turn_ended_leaves_what_it_kept_not_the_next_loops() -> None:
    from apps.core.observability.turns import TurnBuffer

    written: list[list[int]] = []
    buffer: TurnBuffer[list[int]] = TurnBuffer(list, written.append)
    loop = asyncio.new_event_loop()

    def keep_then_stop() -> None:
        buffer.current().append(1)  # type: ignore[union-attr]
        loop.stop()  # the turn's end, scheduled after this callback, never runs

    loop.call_soon(keep_then_stop)
    loop.run_forever()
    loop.close()
    assert written == []

    async def keep() -> None:
        buffer.current().append(2)  # type: ignore[union-attr]
        await asyncio.sleep(0)

    asyncio.run(keep())
    assert written == [[2]]  # in the same thread, the next loop's turn is its own
    assert buffer.current() is None  # no loop, no turn: the caller writes at once
