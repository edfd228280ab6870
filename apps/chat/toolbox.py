"""The tools a model may use during a chat: exactly those the caller's effective scope may execute.

Reads and runs tools through the tools app's interface (`apps.tools.selectors.tools_executable_by`,
`apps.tools.services.tool_call`), so a model can never do more than the API key it acts for.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from apps.core.errors import ApplicationError, to_application_error
from apps.llm.loop import ToolOutcome
from apps.llm.providers.base import ToolCall, ToolDefinition
from apps.tenants.access import enforce_target, scope_violation
from apps.tenants.authentication import Principal
from apps.tenants.scopes import Action

logger = logging.getLogger("slop.llm")
_FUNCTION_NAME = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class OfferedTool:
    tool_id: str
    function_name: str  # what the model sees (OpenAI allows only [A-Za-z0-9_-]{1,64})
    definition: ToolDefinition


def tools_app_available() -> bool:
    try:
        from apps.tools import selectors, services
    except ImportError:
        return False
    return hasattr(selectors, "tools_executable_by") and hasattr(services, "tool_call")


def offered_tools(*, principal: Principal, selection: Any) -> dict[str, OfferedTool]:
    """The tools offered to the model, by function name. `selection`: "auto" (all the scope allows),
    "none", or a list of tool ids (narrowed further by the scope)."""
    if selection == "none" or not tools_app_available():
        return {}
    from apps.tools.selectors import tools_executable_by

    wanted = set(selection) if isinstance(selection, list) else None
    offered: dict[str, OfferedTool] = {}
    for spec in tools_executable_by(principal=principal):
        if wanted is not None and spec.id not in wanted:
            continue
        name = _FUNCTION_NAME.sub("_", spec.id)[:64]
        offered[name] = OfferedTool(
            tool_id=spec.id,
            function_name=name,
            definition=ToolDefinition(
                name=name,
                description=spec.description or spec.id,
                parameters=spec.schema or {"type": "object"},
            ),
        )
    return offered


def tool_execute(*, principal: Principal, offered: dict[str, OfferedTool], call: ToolCall) -> ToolOutcome:
    """Runs one call from the model (synchronously). A tool the model was not offered is refused
    with the seed's scope-violation shape and never executed. A model's call is not an HTTP
    request, so this adapter runs the check the /tools view declares (`tool_target` on a freshly
    loaded tool, then the one access check): the offer was made from a snapshot seconds old."""
    tool = offered.get(call.name)
    if tool is None:
        violation = scope_violation(Action(area="tools", permission="execute", identifier=call.name))
        return ToolOutcome(error=violation.payload())
    from apps.tools.access import tool_target
    from apps.tools.services import tool_call

    try:
        spec = enforce_target(principal, tool_target(principal, tool.tool_id, "execute"))
        response = tool_call(
            principal=principal,
            spec=spec,
            parameters=call.arguments,
            call_id=call.id,
            wait_seconds=settings.SLOP_CHAT_TOOL_WAIT_SECONDS,
        )
    except Exception as exc:  # a tool's failure is the model's to see, never the request's end
        error = to_application_error(exc)
        if error is None:
            logger.exception("tool %s failed", tool.tool_id)
            error = ApplicationError(f"Tool {tool.tool_id} failed", code="tool_failed", status=502)
        return ToolOutcome(error=error.payload())
    return _outcome(response)


def _outcome(response: Any) -> ToolOutcome:
    """A tool's answer as the model sees it: the result itself; for a long-running tool's job, its
    result when it finished within the wait, its error, or where to follow it if still running."""
    if not isinstance(response, dict):
        return ToolOutcome(result=response)
    if "job_id" not in response:
        return ToolOutcome(result=response.get("result", response))
    status = response.get("status")
    if status == "succeeded":
        return ToolOutcome(result=response.get("result"))
    if status in ("failed", "cancelled"):
        error = response.get("error")
        message = error if isinstance(error, str) else f"Tool job {response['job_id']} {status}"
        return ToolOutcome(error={"error": message, "code": "tool_failed", "job_id": response["job_id"]})
    return ToolOutcome(
        result={
            "job_id": response["job_id"],
            "status": status,
            "status_url": response.get("status_url"),
            "note": "Still running after the chat's wait; its result will be at status_url.",
        }
    )
