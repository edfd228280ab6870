"""Log lines: structlog renders every record of the standard logging module (ours, Django's,
Celery's) with the time, level, logger, message and the request's context (request_id, tenant_id,
key_prefix); then the whole line goes through `redact`, as plain lines do.

- `JsonFormatter` (SLOP_LOG_FORMAT=json, production's default): one JSON object a line, for a
  log pipeline, the same fields built from the record in one pass, written by orjson: the
  standard json module cost ~10 µs of a line's ~55, and every request writes one
  (bench/request_cost.py; README, "Observability").
- `ConsoleFormatter` (SLOP_LOG_FORMAT=console, the default with DEBUG on, so `make run`): the same
  fields as one readable line (structlog's ConsoleRenderer), coloured on a terminal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

from apps.core.observability import context
from apps.core.observability.turns import TurnBuffer
from apps.core.redaction import redact

EventDict = MutableMapping[str, Any]


def _add_context(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
    # Over what ExtraAdder copied from the record: the plain format's filter leaves its own
    # `request_id` there ("-" outside a request).
    event_dict.update(context.current())
    if event_dict.get("request_id") == "-":
        del event_dict["request_id"]
    return event_dict


def _add_logger_name(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    if record is not None:
        event_dict["logger"] = record.name
    return event_dict


def _orjson_dumps(event_dict: Any, **kwargs: Any) -> str:
    # default=str as the standard module's renderer had; keys that are not strings are allowed.
    return orjson.dumps(event_dict, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _pre_chain() -> list[Any]:
    return [
        structlog.stdlib.add_log_level,
        _add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        _add_context,
    ]


_RECORD_KEYS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


_second: tuple[int, str] = (0, "")  # the last second a line was written in, as ISO 8601 in UTC


def _timestamp() -> str:
    """Now in UTC, ISO 8601 to the microsecond (`2026-12-03T07:53:26.269863Z`): the second's text
    made once a second (datetime's isoformat() was ~1.2 µs of a request line's ~5)."""
    global _second
    now = time.time()
    second = int(now)
    cached = _second
    if cached[0] != second:
        cached = _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{int((now - second) * 1_000_000):06d}Z"


class JsonFormatter(logging.Formatter):
    """The `json` formatter of settings.LOGGING (SLOP_LOG_FORMAT=json, the default in production).

    The fields structlog's chain gave a record (event, level, logger, the record's extras, an ISO
    timestamp in UTC, the request's context, the exception's traceback), in that order, built from
    the record in one pass: structlog's ProcessorFormatter copied the record and ran six
    processors for each line, ~5 % of a worker's time on a request whose line is all it logs
    (README, "The cost of metrics, logs and traces"). The fields a formatter adds to a record
    (`message`, `asctime`) are not extras: another handler's formatting left `message` in lines."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "event": record.getMessage(),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_KEYS:
                event[key] = value
        if record.stack_info:
            event["stack_info"] = record.stack_info
        return _json_line(event, record.exc_info)


def _json_line(event: dict[str, Any], exc_info: Any = None) -> str:
    """JsonFormatter's line of a record's fields (`event`): the timestamp, the request's context
    and the traceback added, dumped, redacted."""
    event["timestamp"] = _timestamp()
    _add_context(None, "", event)
    if exc_info:
        event["exc_info"] = exc_info
        event = dict(structlog.processors.format_exc_info(None, "", event))
    return redact(_orjson_dumps(event))


def platform_handler(logger: logging.Logger, level: int) -> logging.StreamHandler[Any] | None:
    """The handler a record of `logger` at `level` reaches when it is settings.LOGGING's own and
    the only one (the `console` StreamHandler, JsonFormatter, the request-id filter), and nothing
    on the way filters the record; else None: another handler (a test's caplog, an operator's
    configuration) gets the record through the logging module. `logger.isEnabledFor(level)` is
    the caller's to check."""
    handlers: list[logging.Handler] | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        if current.handlers:
            if handlers is not None:
                return None
            handlers = current.handlers
        if not current.propagate:
            break
        current = current.parent
    if handlers is None or len(handlers) != 1:
        return None
    handler = handlers[0]
    if type(handler) is not logging.StreamHandler or type(handler.formatter) is not JsonFormatter:
        return None
    if level < handler.level:
        return None
    for found in handler.filters:
        if type(found).__name__ != "RequestIdLogFilter":
            return None
    return handler


def write_request_line(
    handler: logging.StreamHandler[Any], logger_name: str, request_id: str, fields: dict[str, Any]
) -> None:
    """Writes to `handler` (platform_handler's) the line that logging an INFO record of
    `logger_name` with the message `fields["event"]` and the extras `fields` writes inside a
    request whose id is `request_id`, field for field, without making the record (~3 µs),
    finding its caller, filtering and handling it: the request line's cost was ~20 µs, the most
    of the figures of a request answered in ~100 (bench/observability.py).

    Only what the client sent (the method, the path, its X-Request-ID) can carry a secret, so
    only those are redacted (each alone, before it is encoded), not the whole line (~1 µs).

    On an event loop, the lines of one turn of the loop go out in one write at its end (a write,
    and its flush, a line took ~15 µs of system time a request in a loaded worker); elsewhere the
    line is written at once. A stream that fails is reported as the handler reports it."""
    event = fields
    event["request_id"] = request_id
    event["timestamp"] = _timestamp()
    event.update(context.current())
    if event["request_id"] == "-":
        del event["request_id"]
    sent = f"{event['method']} {event['path']} {event.get('request_id', '')}"
    if redact(sent) != sent:
        for name in ("event", "method", "path", "request_id"):
            if name in event:
                event[name] = redact(event[name])
    line = _orjson_dumps(event) + handler.terminator
    waiting = _waiting.current()
    if waiting is None:
        _write(handler, line)
    else:
        waiting.append((handler, line))


def _write_waiting(lines: list[tuple[logging.StreamHandler[Any], str]]) -> None:
    handler = None
    run: list[str] = []
    for line_handler, line in lines:  # (one handler, but for a configuration changed meanwhile)
        if line_handler is not handler and run:
            _write(handler, "".join(run))  # type: ignore[arg-type]
            run = []
        handler = line_handler
        run.append(line)
    if run:
        _write(handler, "".join(run))  # type: ignore[arg-type]


# The lines an event loop's turn wrote, until its end.
_waiting: TurnBuffer[list[tuple[logging.StreamHandler[Any], str]]] = TurnBuffer(list, _write_waiting)


def _write(handler: logging.StreamHandler[Any], text: str) -> None:
    """StreamHandler.emit's write and flush, under its lock, and its report of a failure."""
    try:
        with handler.lock:  # type: ignore[union-attr]
            handler.stream.write(text)
            handler.stream.flush()
    except Exception:
        handler.handleError(logging.makeLogRecord({"name": "slop.request", "msg": text[:200]}))


class ConsoleFormatter(structlog.stdlib.ProcessorFormatter):
    """The `console` formatter (SLOP_LOG_FORMAT=console, the default with DEBUG on): a line for a
    person, `timestamp [level] message  key=value ...`, the traceback below it."""

    def __init__(self) -> None:
        import sys

        super().__init__(
            foreign_pre_chain=_pre_chain(),
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.dev.ConsoleRenderer(
                    colors=sys.stderr.isatty(),
                    sort_keys=False,
                    # Not rich's traceback, which prints every frame's locals (secrets too).
                    exception_formatter=structlog.dev.plain_traceback,
                ),
            ],
        )

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
