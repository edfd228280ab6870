"""The built-in tools every tenant has (each can be disabled per tenant).

The tools app defines the ones that need nothing else (calculator, current_time); an app that
offers a built-in (memory_search, resource_search) registers it from its AppConfig.ready() with
`builtin_register`, so tools imports none of the apps above it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ImproperlyConfigured

from apps.core.errors import ValidationFailed
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


SEARCH_PROPERTIES: dict[str, Any] = {  # shared by the search built-ins
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
    ]
}


def builtin_register(builtin: Builtin) -> None:
    """Adds an app's built-in tool; called from that app's AppConfig.ready(). Ids are unique."""
    existing = BUILTINS.get(builtin.id)
    if existing is not None and existing != builtin:
        raise ImproperlyConfigured(f"Two built-in tools are named {builtin.id!r}")
    BUILTINS[builtin.id] = builtin
    # Listed by id, whatever order the apps are installed in (GET /tools shows them in this order).
    ordered = sorted(BUILTINS.items())
    BUILTINS.clear()
    BUILTINS.update(ordered)
