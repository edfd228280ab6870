"""Log lines: structlog renders every record of the standard logging module (ours, Django's,
Celery's) with the time, level, logger, message and the request's context (request_id, tenant_id,
key_prefix); then the whole line goes through `redact`, as plain lines do.

- `JsonFormatter` (SLOP_LOG_FORMAT=json, production's default): one JSON object a line, for a
  log pipeline. orjson writes it: the standard json module cost ~10 µs of a line's ~55, and every
  request writes one (bench/request_cost.py; README, "Observability").
- `ConsoleFormatter` (SLOP_LOG_FORMAT=console, the default with DEBUG on, so `make run`): the same
  fields as one readable line (structlog's ConsoleRenderer), coloured on a terminal.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
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


class JsonFormatter(structlog.stdlib.ProcessorFormatter):
    """The `json` formatter of settings.LOGGING (SLOP_LOG_FORMAT=json, the default in production)."""

    def __init__(self) -> None:
        super().__init__(
            foreign_pre_chain=_pre_chain(),
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(serializer=_orjson_dumps),
            ],
        )

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


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
