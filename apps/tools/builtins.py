"""The built-in tools every tenant has (each can be disabled per tenant)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apps.core.errors import ValidationFailed
from apps.tenants.access import readable
from apps.tenants.authentication import Principal
from apps.tools.calculator import CalculatorError, evaluate


@dataclass(frozen=True)
class Builtin:
    """A tool every tenant has. `run` gets the caller, for tools that act within the caller's
    scopes (the search tools); those cannot run as background jobs, where there is no caller."""

    id: str
    description: str
    schema: dict[str, Any]
    example: Any
    safe: bool
    run: Callable[[dict[str, Any], Principal | None], Any]
    needs_caller: bool = False


def _calculator(parameters: dict[str, Any], caller: Principal | None) -> Any:
    try:
        return evaluate(parameters["expression"])
    except CalculatorError as exc:
        raise ValidationFailed({"expression": [str(exc)]}, message=f"Cannot calculate: {exc}") from None


def _current_time(parameters: dict[str, Any], caller: Principal | None) -> Any:
    name = parameters.get("timezone") or "UTC"
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationFailed(
            {"timezone": [f"Unknown IANA time zone {name!r} (e.g. Europe/Paris, America/New_York, UTC)"]}
        ) from None
    now = datetime.now(UTC).astimezone(zone)
    offset = now.strftime("%z")
    return {
        "iso": now.isoformat(timespec="seconds"),
        "timezone": name,
        "utc_offset": f"{offset[:3]}:{offset[3:]}",
        "unix": int(now.timestamp()),
    }


def _memory_search(parameters: dict[str, Any], caller: Principal | None) -> Any:
    from apps.memory.selectors import memory_query

    assert caller is not None  # needs_caller: tool_call refuses to queue it
    return memory_query(
        principal=caller,
        query=parameters["query"],
        limit=parameters.get("limit", 5),
        key_prefix=parameters.get("key_prefix"),
    )


def _resource_search(parameters: dict[str, Any], caller: Principal | None) -> Any:
    from apps.resources.search import resource_search

    assert caller is not None  # needs_caller: tool_call refuses to queue it
    hits = resource_search(
        tenant=caller.tenant,
        query=parameters["query"],
        readable_prefixes=readable(caller, "resources"),
        limit=parameters.get("limit", 5),
        type=parameters.get("type"),
        prefix=parameters.get("prefix"),
    )
    return [
        {
            "id": hit.resource.path,
            "title": hit.resource.title,
            "type": hit.resource.type,
            "score": hit.score,
            "snippet": hit.snippet,
        }
        for hit in hits
    ]


_SEARCH_PROPERTIES: dict[str, Any] = {
    "query": {"type": "string", "minLength": 1, "maxLength": 2000, "description": "What to look for"},
    "limit": {"type": "integer", "minimum": 1, "maximum": 20, "description": "How many results (default 5)"},
}

BUILTINS: dict[str, Builtin] = {
    builtin.id: builtin
    for builtin in [
        Builtin(
            id="calculator",
            description="Performs mathematical calculations",
            schema={
                "type": "object",
                "properties": {
                    "expression": {
                        "type": "string",
                        "description": "Mathematical expression to evaluate",
                    }
                },
                "required": ["expression"],
            },
            example="15 * 7",
            safe=True,
            run=_calculator,
        ),
        Builtin(
            id="current_time",
            description="Gets the current date and time, optionally in an IANA time zone",
            schema={
                "type": "object",
                "properties": {
                    "timezone": {
                        "type": "string",
                        "description": "IANA time zone such as Europe/Paris (default UTC)",
                    }
                },
            },
            example={"timezone": "Europe/Paris"},
            safe=True,
            run=_current_time,
        ),
        Builtin(
            id="memory_search",
            description="Searches the team's memory by meaning; only keys the caller may read",
            schema={
                "type": "object",
                "properties": {
                    **_SEARCH_PROPERTIES,
                    "key_prefix": {"type": "string", "description": "Only keys starting with this"},
                },
                "required": ["query"],
            },
            example={"query": "What theme settings do I have?"},
            safe=True,
            run=_memory_search,
            needs_caller=True,
        ),
        Builtin(
            id="resource_search",
            description="Searches the team's resources (documents) by words and meaning; "
            "only resources the caller may read",
            schema={
                "type": "object",
                "properties": {
                    **_SEARCH_PROPERTIES,
                    "type": {"type": "string", "description": "Only resources of this type"},
                    "prefix": {"type": "string", "description": "Only resources whose id starts with this"},
                },
                "required": ["query"],
            },
            example={"query": "mars mission timeline", "limit": 3},
            safe=True,
            run=_resource_search,
            needs_caller=True,
        ),
    ]
}
