"""The request's context travels with the Celery tasks it sends: the message carries the request
id, tenant id and key prefix (and the trace context when tracing is on), and the worker binds them
while the task runs, so its log lines (JSON, redacted, through the platform's LOGGING) say which
request and tenant they belong to. A task's own `tenant_id` argument names its tenant too.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from celery import signals

from apps.core.observability import context, multiprocess, tracing

HEADER = "slop_context"
_tokens: dict[str, Any] = {}


@signals.before_task_publish.connect
def _carry_context(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    if headers is None:
        return
    fields = context.current()
    if fields:
        headers[HEADER] = fields
    tracing.inject(headers)


@signals.task_prerun.connect
def _bind_context(task_id: str | None = None, task: Any = None, kwargs: Any = None, **extra: Any) -> None:
    request = getattr(task, "request", None)
    carried = getattr(request, HEADER, None) or (getattr(request, "headers", None) or {}).get(HEADER) or {}
    fields = {key: carried.get(key) for key in ("request_id", "tenant_id", "key_prefix")}
    if isinstance(kwargs, dict) and kwargs.get("tenant_id") is not None:
        fields["tenant_id"] = kwargs["tenant_id"]
    fields["task"] = getattr(task, "name", None)
    fields["task_id"] = task_id
    if task_id is not None:
        _tokens[task_id] = context.bind(**fields)


@signals.task_postrun.connect
def _unbind_context(task_id: str | None = None, **kwargs: Any) -> None:
    token = _tokens.pop(task_id, None) if task_id is not None else None
    if token is not None:
        with contextlib.suppress(ValueError):  # bound in another context (run eagerly elsewhere)
            context.unbind(token)
    multiprocess.flush()  # a task's figures (tool calls, tokens) in /metrics as soon as it ends


@signals.setup_logging.connect
def _keep_django_logging(**kwargs: Any) -> None:
    """A receiver here tells Celery not to configure logging: settings.LOGGING (JSON, redacted),
    which Django applied at setup, stays in force in the worker and beat. A `--loglevel` more
    verbose than SLOP_LOG_LEVEL still applies to Celery's own loggers (`worker ready`, tasks)."""
    requested = kwargs.get("loglevel")
    level = logging.getLevelName(requested.upper()) if isinstance(requested, str) else requested
    if isinstance(level, int) and level < logging.getLogger().getEffectiveLevel():
        logging.getLogger("celery").setLevel(level)
