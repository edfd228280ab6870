"""Resource ids: hierarchical paths such as `notes/hello` (PROTOCOL.md §8).

The whole rest of the URL after `/resources/` is the id, so the two route words (`search`,
`prefix/…`) cannot be ids, and a path that would mean something odd in a URL or a file system
(empty segments, `..`) is refused with the rule it broke.
"""

from __future__ import annotations

import unicodedata

from apps.core.errors import ApplicationError

MAX_ID_LENGTH = 512
RESERVED_IDS = frozenset({"search"})
RESERVED_PREFIX = "prefix/"


def invalid_id(rule: str) -> ApplicationError:
    return ApplicationError(
        f"Invalid resource id: {rule}",
        code="validation_error",
        status=400,
        extra={"details": {"id": [rule]}},
    )


def resource_id_problem(value: object) -> str | None:
    """The rule `value` breaks as a resource id, or None when it is a valid id."""
    if not isinstance(value, str):
        return "an id must be a string"
    if not value:
        return "an id must be 1-512 characters long, not empty"
    if len(value) > MAX_ID_LENGTH:
        return f"an id must be 1-512 characters long, not {len(value)}"
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        return "an id may not contain control characters"
    if value in RESERVED_IDS:
        return "'search' is a route (/resources/search), not an id"
    if value.startswith(RESERVED_PREFIX):
        return "an id may not start with 'prefix/' (that is the route /resources/prefix/<prefix>)"
    segments = value.split("/")
    if any(segment == "" for segment in segments):
        return "an id may not have empty segments (a leading, trailing or double '/')"
    if any(segment in (".", "..") for segment in segments):
        return "an id may not have '.' or '..' segments"
    return None


def validate_resource_id(value: object) -> str:
    problem = resource_id_problem(value)
    if problem is not None:
        raise invalid_id(problem)
    assert isinstance(value, str)
    return value


def normalise_prefix(value: str) -> str:
    """`notes/` and `notes` name the same folder in /resources/prefix/<prefix>."""
    return value.rstrip("/")
