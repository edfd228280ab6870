"""JSON log lines: structlog renders every record of the standard logging module (ours, Django's,
Celery's) as one JSON object with the time, level, logger, message and the request's context
(request_id, tenant_id, key_prefix); then the whole line goes through `redact`, as plain lines do.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

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


class JsonFormatter(structlog.stdlib.ProcessorFormatter):
    """The `json` formatter of settings.LOGGING (SLOP_LOG_FORMAT=json, the default)."""

    def __init__(self) -> None:
        super().__init__(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                _add_logger_name,
                structlog.stdlib.ExtraAdder(),
                structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
                _add_context,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(default=str, ensure_ascii=False),
            ],
        )

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
