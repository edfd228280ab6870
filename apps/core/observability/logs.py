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
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

from apps.core.observability import context
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


def _timestamp() -> str:
    return datetime.now(tz=UTC).isoformat().replace("+00:00", "Z")


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
        event["timestamp"] = _timestamp()
        _add_context(None, "", event)
        if record.exc_info:
            event["exc_info"] = record.exc_info
            event = dict(structlog.processors.format_exc_info(None, "", event))
        return redact(_orjson_dumps(event))


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
