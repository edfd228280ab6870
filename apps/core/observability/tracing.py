"""OpenTelemetry traces after the GenAI semantic conventions, off unless an OTLP endpoint is set.

With OTEL_EXPORTER_OTLP_ENDPOINT set, `configure()` installs the SDK's tracer provider with a
batching OTLP/HTTP exporter; every request gets a server span (`GET memory/<path:key>`) and the
model loop records `chat {model}` and `execute_tool {tool}` spans with gen_ai.* attributes and
token usage. Unset, every helper here returns before touching OpenTelemetry: a flag test.

Agents (apps/agents) wrap a run in `agent_span(agent_id)`:

    with agent_span("billing", name="Billing", model="gpt-4o-mini") as span:
        ...  # chat and tool spans started inside nest under it
        span.usage(input_tokens, output_tokens)

Spans that live across the `yield`s of an async generator (the model loop) are not made current
(a context attached in one step and detached in another breaks when the consumer switches
contexts); they take the context current when they start as their parent instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

logger = logging.getLogger("slop.tracing")

_lock = threading.Lock()
_enabled = False
_tracer: trace.Tracer = trace.NoOpTracer()

OPERATION = "gen_ai.operation.name"
PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "echo": "slop.echo"}


def enabled() -> bool:
    return _enabled


def configure(*, endpoint: str | None, service_name: str, sample_ratio: float = 1.0) -> bool:
    """Install the SDK and the OTLP exporter once per process when `endpoint` is set."""
    global _enabled, _tracer
    if not endpoint:
        return False
    with _lock:
        if _enabled:
            return True
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        provider = TracerProvider(
            resource=Resource.create({"service.name": service_name}),
            sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
        )
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        install(provider)
        logger.info("Traces are exported by OTLP to %s", endpoint)
        return True


def install(provider: trace.TracerProvider) -> None:
    """Record with `provider` from now on (configure's, or a test's with an in-memory exporter)."""
    global _enabled, _tracer
    _tracer = provider.get_tracer("slop_platform")
    _enabled = True


def uninstall() -> None:
    global _enabled, _tracer
    _enabled = False
    _tracer = trace.NoOpTracer()


def current_context() -> otel_context.Context | None:
    return otel_context.get_current() if _enabled else None


def start_span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
    parent: otel_context.Context | None = None,
) -> Span | None:
    """A span that is not made current (ended by `end_span`); None when tracing is off."""
    if not _enabled:
        return None
    return _tracer.start_span(name, context=parent, kind=kind, attributes=attributes)


def end_span(span: Span | None, error: BaseException | None = None, **attributes: Any) -> None:
    if span is None:
        return
    for key, value in attributes.items():
        if value is not None:
            span.set_attribute(key, value)
    if error is not None:
        span.set_attribute("error.type", getattr(error, "code", None) or type(error).__qualname__)
        span.set_status(Status(StatusCode.ERROR, str(error)[:200]))
    span.end()


@contextmanager
def server_span(method: str, headers: Mapping[str, str]) -> Iterator[Span | None]:
    """The span of one HTTP request, parented by an incoming `traceparent`, made current."""
    if not _enabled:
        yield None
        return
    parent = propagate.extract(headers) if "traceparent" in headers else None
    span = _tracer.start_span(
        method, context=parent, kind=SpanKind.SERVER, attributes={"http.request.method": method}
    )
    token = otel_context.attach(trace.set_span_in_context(span, parent))
    try:
        yield span
    finally:
        otel_context.detach(token)
        span.end()


class LoopServerSpan:
    """server_span's span for a request answered on the event loop (apps.tenants.loop), made
    current for its task: `answered(method, route, status)` names it as the thread path does and
    ends it; `handed_on()` drops it unended (never exported), the thread path's span being the
    request's. None from `open` when tracing is off."""

    __slots__ = ("_token", "span")

    def __init__(self, span: Span, token: object) -> None:
        self.span = span
        self._token = token

    @classmethod
    def open(cls, method: str, headers: list[tuple[bytes, bytes]]) -> LoopServerSpan | None:
        if not _enabled:
            return None
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in headers
            if name in (b"traceparent", b"tracestate")
        }
        parent = propagate.extract(carrier) if carrier else None
        span = _tracer.start_span(
            method, context=parent, kind=SpanKind.SERVER, attributes={"http.request.method": method}
        )
        return cls(span, otel_context.attach(trace.set_span_in_context(span, parent)))

    def answered(self, method: str, route: str, status: int) -> None:
        otel_context.detach(self._token)  # type: ignore[arg-type]
        self.span.update_name(f"{method} {route}")
        self.span.set_attribute("http.route", route)
        self.span.set_attribute("http.response.status_code", status)
        self.span.end()

    def handed_on(self) -> None:
        otel_context.detach(self._token)  # type: ignore[arg-type]


def chat_span(*, provider: str, model: str, temperature: float | None, max_tokens: int | None,
              parent: otel_context.Context | None) -> Span | None:  # fmt: skip
    """`chat {model}`: one call to a model (the loop's round)."""
    if not _enabled:
        return None
    attributes: dict[str, Any] = {
        OPERATION: "chat",
        "gen_ai.provider.name": PROVIDERS.get(provider, provider),
        "gen_ai.request.model": model,
    }
    if temperature is not None:
        attributes["gen_ai.request.temperature"] = temperature
    if max_tokens is not None:
        attributes["gen_ai.request.max_tokens"] = max_tokens
    return start_span(f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes, parent=parent)


def tool_span(*, tool: str, call_id: str | None, parent: otel_context.Context | None) -> Span | None:
    """`execute_tool {tool}`: one tool call a model asked for."""
    if not _enabled:
        return None
    attributes: dict[str, Any] = {
        OPERATION: "execute_tool",
        "gen_ai.tool.name": tool,
        "gen_ai.tool.type": "function",
    }
    if call_id:
        attributes["gen_ai.tool.call.id"] = call_id
    return start_span(f"execute_tool {tool}", attributes=attributes, parent=parent)


class AgentSpan:
    """What `agent_span` yields: note the run's token usage on the span (no-op when off)."""

    __slots__ = ("span",)

    def __init__(self, span: Span | None) -> None:
        self.span = span

    def usage(self, input_tokens: int, output_tokens: int) -> None:
        if self.span is not None:
            self.span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
            self.span.set_attribute("gen_ai.usage.output_tokens", output_tokens)

    def set(self, key: str, value: Any) -> None:
        if self.span is not None and value is not None:
            self.span.set_attribute(key, value)


@contextmanager
def agent_span(agent_id: str, *, name: str | None = None, model: str | None = None) -> Iterator[AgentSpan]:
    """`invoke_agent {agent}`, made current, so the chat and tool spans of the run nest under it.
    Enter and leave it in one task (it may span the yields of a generator that task drives)."""
    if not _enabled:
        yield AgentSpan(None)
        return
    attributes: dict[str, Any] = {OPERATION: "invoke_agent", "gen_ai.agent.id": agent_id}
    attributes["gen_ai.agent.name"] = name or agent_id
    if model:
        attributes["gen_ai.request.model"] = model
    span = _tracer.start_span(f"invoke_agent {name or agent_id}", attributes=attributes)
    token = otel_context.attach(trace.set_span_in_context(span))
    error: BaseException | None = None
    try:
        yield AgentSpan(span)
    except BaseException as exc:
        error = exc
        raise
    finally:
        otel_context.detach(token)
        end_span(span, error)


def inject(carrier: dict[str, Any]) -> None:
    """Put the current trace context into `carrier` (a Celery message's headers)."""
    if _enabled:
        propagate.inject(carrier)


def extract(carrier: Mapping[str, Any]) -> otel_context.Context | None:
    return propagate.extract(carrier) if _enabled else None
