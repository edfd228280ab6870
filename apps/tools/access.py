"""What the /tools routes need, as declarations the base view runs (apps/tenants/access.py).

A tool's scope depends on the tool: `tools.safe.*` / `tools.safe.<id>` reach it only if it is
marked safe, so the declaration loads the tool once and hands it to the handler. The chat model's
tool calls go through `tool_target` too (apps/chat/toolbox.py): one rule for both doors.
"""

from __future__ import annotations

from apps.core.errors import NotFound
from apps.tenants.access import Context, NeedTarget, Target
from apps.tenants.authentication import Principal
from apps.tenants.scopes import Action
from apps.tools.job_kinds import job_kind_of
from apps.tools.selectors import tool_job_get, tool_spec_get

# The same rule as apps.tools.services.TOOL_ID: an id no tool can have is never looked up.
from apps.tools.services import TOOL_ID


def tool_target(principal: Principal, tool_id: str, permission: str) -> Target:
    """The tool (a ToolSpec) and the action that reaches it; the 403 comes before a 404."""
    spec = tool_spec_get(tenant=principal.tenant, tool_id=tool_id) if TOOL_ID.match(tool_id) else None
    action = Action("tools", permission, tool_id, safe_tool=spec.safe if spec is not None else False)
    missing = NotFound(f"Tool not found: {tool_id}") if spec is None else None
    return Target(obj=spec, any_of=(action,), missing=missing)


def job_target(principal: Principal, job_id: str, *permissions: str) -> Target:
    """A job of the caller's team (404 otherwise) and the actions on its tool that reach it."""
    job = tool_job_get(tenant=principal.tenant, job_id=job_id)
    kind = job_kind_of(job)
    if kind is not None:  # not a tool's job: the kind says which scope reaches it
        return Target(obj=job, any_of=tuple(kind.action(job, each) for each in permissions))
    spec = tool_spec_get(tenant=principal.tenant, tool_id=job.tool_slug)
    safe = spec.safe if spec is not None else False
    return Target(
        obj=job, any_of=tuple(Action("tools", each, job.tool_slug, safe_tool=safe) for each in permissions)
    )


def tool_in_url(permission: str) -> NeedTarget:
    def load(principal: Principal, context: Context) -> Target:
        return tool_target(principal, str(context.kwargs["tool_id"]), permission)

    return NeedTarget(load)


def job_in_url(*permissions: str) -> NeedTarget:
    def load(principal: Principal, context: Context) -> Target:
        return job_target(principal, str(context.kwargs["job_id"]), *permissions)

    return NeedTarget(load)
