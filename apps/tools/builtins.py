"""The built-in tools every tenant has (each can be disabled per tenant)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apps.core.errors import ValidationFailed
from apps.tools.calculator import CalculatorError, evaluate


@dataclass(frozen=True)
class Builtin:
    id: str
    description: str
    schema: dict[str, Any]
    example: Any
    safe: bool
    run: Callable[[dict[str, Any]], Any]


def _calculator(parameters: dict[str, Any]) -> Any:
    try:
        return evaluate(parameters["expression"])
    except CalculatorError as exc:
        raise ValidationFailed({"expression": [str(exc)]}, message=f"Cannot calculate: {exc}") from None


def _current_time(parameters: dict[str, Any]) -> Any:
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
