"""The bounds of one multi-agent run (PROTOCOL.md §11): steps, fan-out, handoff depth and time.

They come from settings (SLOP_AGENT_*), and a tenant may have its own (Tenant.agent_limits).
A run that would pass one stops there with
`AgentLimitExceeded`: the chat layer turns it into an `error` event and stores what was said as an
`incomplete` reply, so a run never hangs and never grows without bound.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from django.conf import settings

from apps.core.errors import ApplicationError


@dataclass(frozen=True)
class RunLimits:
    max_steps: int
    max_fanout: int
    parallel_concurrency: int
    max_handoffs: int
    max_seconds: float

    @classmethod
    def from_settings(cls) -> RunLimits:
        return cls(
            max_steps=settings.SLOP_AGENT_MAX_STEPS,
            max_fanout=settings.SLOP_AGENT_MAX_FANOUT,
            parallel_concurrency=settings.SLOP_AGENT_PARALLEL_CONCURRENCY,
            max_handoffs=settings.SLOP_AGENT_MAX_HANDOFFS,
            max_seconds=settings.SLOP_AGENT_MAX_SECONDS,
        )

    @classmethod
    def for_tenant(cls, tenant: Any) -> RunLimits:
        """The platform's bounds with the tenant's own (Tenant.agent_limits, set in the admin)."""
        own = getattr(tenant, "agent_limits", None) or {}
        names = {f.name for f in fields(cls)}
        limits = cls.from_settings()
        overrides = {name: value for name, value in own.items() if name in names}
        if not overrides:
            return limits
        for name in ("max_steps", "max_fanout", "parallel_concurrency", "max_handoffs"):
            if name in overrides:
                overrides[name] = int(overrides[name])
        return replace(limits, **overrides)


class AgentLimitExceeded(ApplicationError):
    """A run passed one of its bounds; `limit` names it (steps, fanout, handoffs, seconds)."""

    def __init__(self, message: str, *, limit: str, value: float) -> None:
        super().__init__(
            message, code="agent_limit_exceeded", status=422, extra={"limit": limit, "limit_value": value}
        )
