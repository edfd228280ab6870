"""Cursor pagination, newest first (PROTOCOL.md §1): `?limit=` (default 50, max 200), `?cursor=`.

The cursor is opaque to clients: the (timestamp, id) of the last row served, base64-encoded. Keyset
pagination stays fast and stable while rows are added, unlike offsets.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from apps.core.errors import ApplicationError

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None


def parse_limit(raw: str | None, *, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    if raw is None or raw == "":
        return default
    try:
        limit = int(raw)
    except ValueError:
        raise ApplicationError(
            f"limit must be an integer between 1 and {maximum}",
            code="validation_error",
            extra={"details": {"limit": [f"Must be an integer between 1 and {maximum}."]}},
        ) from None
    if not 1 <= limit <= maximum:
        raise ApplicationError(
            f"limit must be an integer between 1 and {maximum}",
            code="validation_error",
            extra={"details": {"limit": [f"Must be an integer between 1 and {maximum}."]}},
        )
    return limit


def _encode(timestamp: datetime, key: Any) -> str:
    raw = json.dumps([timestamp.isoformat(), key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        timestamp, key = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(timestamp), key
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise ApplicationError(
            "cursor is not valid; use the next_cursor of a previous page",
            code="validation_error",
            extra={"details": {"cursor": ["Not a cursor this server issued."]}},
        ) from None


def paginate(
    queryset: QuerySet[Any],
    *,
    cursor: str | None,
    limit: int,
    time_field: str = "created_at",
    key_field: str = "pk",
) -> Page:
    """Newest first by (time_field, key_field); both must be stable for a row."""
    ordered = queryset.order_by(f"-{time_field}", f"-{key_field}")
    if cursor:
        timestamp, key = _decode(cursor)
        ordered = ordered.filter(
            Q(**{f"{time_field}__lt": timestamp}) | Q(**{time_field: timestamp, f"{key_field}__lt": key})
        )
    rows = list(ordered[: limit + 1])
    items = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        key_attr = "pk" if key_field == "pk" else key_field
        next_cursor = _encode(getattr(last, time_field), getattr(last, key_attr))
    return Page(items=items, next_cursor=next_cursor)


def page_params(query_params: Any) -> tuple[str | None, int]:
    return query_params.get("cursor") or None, parse_limit(query_params.get("limit"))
