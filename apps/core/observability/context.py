"""What a log line or a span says about where it comes from: the request, its tenant and key.

The request is kept as it is (its principal is set later, by DRF's authentication), and read only
when a line is written, so a request that logs nothing pays for nothing. A Celery task has no
request; it binds what its message carried (celery_signals.py).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

_request: contextvars.ContextVar[Any] = contextvars.ContextVar("slop_request", default=None)
_NOTHING: Mapping[str, Any] = MappingProxyType({})
_bound: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("slop_context", default=_NOTHING)


@contextmanager
def request_context(request: Any) -> Iterator[None]:
    token = enter_request(request)
    try:
        yield
    finally:
        leave_request(token)


def enter_request(request: Any) -> contextvars.Token[Any]:
    """What request_context does, for the request middleware, which saves the generator's cost."""
    return _request.set(request)


def leave_request(token: contextvars.Token[Any]) -> None:
    _request.reset(token)


def bind(**fields: Any) -> contextvars.Token[Mapping[str, Any]]:
    """Adds fields to the context of what follows (a task); `unbind(token)` takes them off."""
    return _bound.set({**_bound.get(), **{key: value for key, value in fields.items() if value is not None}})


def unbind(token: contextvars.Token[Mapping[str, Any]]) -> None:
    _bound.reset(token)


def principal_fields(principal: Any) -> dict[str, Any]:
    """The tenant id and the key's prefix (its public part, never the secret) of a caller."""
    fields: dict[str, Any] = {}
    tenant = getattr(principal, "tenant", None)
    if tenant is not None:
        fields["tenant_id"] = tenant.pk
    prefix = getattr(principal, "key_prefix", None)
    if prefix:
        fields["key_prefix"] = prefix
    return fields


def current() -> dict[str, Any]:
    """request_id, tenant_id and key_prefix of the code running now, as far as they are known."""
    fields = dict(_bound.get())
    request = _request.get()
    if request is not None:
        request_id = getattr(request, "request_id", None)
        if request_id:
            fields["request_id"] = request_id
        fields.update(principal_fields(getattr(request, "auth", None)))
    return fields


def in_request() -> bool:
    return _request.get() is not None
