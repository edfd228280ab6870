"""The MCP server (the official SDK's low-level `Server`): its handlers read the caller the door
authenticated (apps/facades/mcp/door.py puts the Principal in the ASGI scope) and run the catalog's
functions on a worker thread, as the chat's streams run their database work.

Errors: a tool that is refused or fails answers `isError` with the platform's error (its text
names `required_scope` for a scope refusal; `structuredContent` is PROTOCOL.md's error object).
resources/read answers a JSON-RPC error (-32602, the platform's error object as `data`): another
team's URI and a missing one look the same.

Long-running tools (webhook tools run as ToolJobs): the SDK has task types but no task support to
serve them with, so a call runs the job and waits for it, sending `notifications/progress` on
each status change (when the client asked for progress); a client that gives up cancels the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import mcp_types as types
from channels.db import database_sync_to_async
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.shared.exceptions import MCPError

from apps.chat.engine import Exchange
from apps.chat.services import PreparedExchange
from apps.core.errors import ApplicationError, internal_error, to_application_error
from apps.core.observability import context as log_context
from apps.facades.mcp import catalog
from apps.tenants.access import may_some
from apps.tenants.authentication import Principal
from apps.tools.models import ToolJob

logger = logging.getLogger("slop.mcp")

PRINCIPAL = "slop.principal"  # the ASGI scope key the door sets
REQUEST_ID = "slop.request_id"
JOB_POLL_SECONDS = (0.1, 1.0)  # first and longest pause between two looks at a job


@dataclass(frozen=True)
class Prepared:
    """What the door looked up for a request in the worker-thread trip that authenticated its
    caller, so that the SDK's handlers need no trip of their own for it: the schema this caller is
    offered for the tool a 2026-07-28 tools/call names (see tool_input_schema) and whether that call
    may run long (the door then keeps it alive), the listing of a tools/list (read-only, so nothing
    is done early that the SDK could still refuse)."""

    called: str | None = None
    schema: Mapping[str, Any] | None = None
    runs_long: bool = False  # a long-running tool or an agent: answered as an event stream
    offered: list[catalog.Offered] | None = None


# Set by the door around the SDK's handling of one request (the SDK serves a stateless request in
# the door's task, or in tasks started from it, which see the same value).
PREPARED: ContextVar[Prepared | None] = ContextVar("slop_mcp_prepared", default=None)

T = TypeVar("T")


def on_thread(func: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    # Like the chat's detached runs: a connection of the pool, closed when stale, never the loop's.
    return database_sync_to_async(func, thread_sensitive=False)  # type: ignore[no-any-return]


def _caller(ctx: ServerRequestContext[Any, Any]) -> tuple[Principal, str]:
    request = ctx.request
    scope = getattr(request, "scope", None) or {}
    principal = scope.get(PRINCIPAL)
    if not isinstance(principal, Principal):  # the door never lets a request through without one
        raise MCPError(code=types.INTERNAL_ERROR, message="No authenticated caller")
    return principal, str(scope.get(REQUEST_ID) or "")


@contextlib.contextmanager
def _bound(principal: Principal, request_id: str) -> Any:
    token = log_context.bind(request_id=request_id or None, **log_context.principal_fields(principal))
    try:
        yield
    finally:
        log_context.unbind(token)


def _error_of(exc: BaseException, request_id: str) -> ApplicationError:
    error = to_application_error(exc)
    if error is None:
        error = internal_error(None, exc)
        error.extra["request_id"] = request_id or None
    return error


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _tool_error(error: ApplicationError) -> types.CallToolResult:
    payload = error.payload()
    text = error.message
    if "required_scope" in error.extra:
        text = f"{text} (required_scope: {error.extra['required_scope']})"
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], structured_content=payload, is_error=True
    )


def _tool_result(structured: dict[str, Any]) -> types.CallToolResult:
    shown = structured.get("result", structured) if set(structured) <= {"result", "job_id"} else structured
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=_text(shown))], structured_content=structured
    )


def _rpc_error(error: ApplicationError) -> MCPError:
    code = types.INVALID_PARAMS if error.status < 500 else types.INTERNAL_ERROR
    return MCPError(code=code, message=error.message, data=error.payload())


# --- handlers ------------------------------------------------------------------------------------


async def list_tools(
    ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    principal, request_id = _caller(ctx)
    prepared = PREPARED.get()
    if prepared is not None and prepared.offered is not None:
        offered = prepared.offered
    else:
        with _bound(principal, request_id):
            offered = await on_thread(catalog.offered_tools)(principal)
    return types.ListToolsResult(
        tools=[
            types.Tool(
                name=entry.name,
                title=entry.title,
                description=entry.description,
                input_schema=entry.input_schema,
                annotations=types.ToolAnnotations(read_only_hint=True) if entry.read_only else None,
            )
            for entry in offered
        ]
    )


async def _report(ctx: ServerRequestContext[Any, Any], step: int, message: str) -> None:
    with contextlib.suppress(Exception):  # progress is a courtesy: a closed stream must not fail the call
        await ctx.session.report_progress(float(step), None, message)


async def _follow_job(
    ctx: ServerRequestContext[Any, Any], principal: Principal, answer: dict[str, Any]
) -> dict[str, Any]:
    """Waits for a tool's job, reporting each status it passes through; cancels it if the client
    goes away (the request is cancelled) before it ends."""
    tenant_id = int(principal.tenant.pk)
    job_id = str(answer["job_id"])
    status = str(answer["status"])
    step = 1
    await _report(ctx, step, f"job {job_id} {status}")
    pause, longest = JOB_POLL_SECONDS
    job: ToolJob | None = None
    try:
        while True:
            job = await on_thread(catalog.job_current)(tenant_id, job_id)
            if job.status != status:
                status = str(job.status)
                step += 1
                await _report(ctx, step, f"job {job_id} {status}")
            if job.is_finished:
                break
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, longest)
    except (asyncio.CancelledError, anyio.get_cancelled_exc_class()):
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await on_thread(catalog.job_cancel)(tenant_id, job_id)
        raise
    if job.status == ToolJob.Status.SUCCEEDED:
        return {"result": job.result, "job_id": job_id}
    raise ApplicationError(
        f"Job {job_id} {job.status}: {job.error or 'no result'}",
        code=job.error_code or f"job_{job.status}",
        status=502 if job.status == ToolJob.Status.FAILED else 409,
        extra={"job_id": job_id},
    )


async def _ask_agent(ctx: ServerRequestContext[Any, Any], prepared: PreparedExchange) -> dict[str, Any]:
    """POST /chat {"agent": …} run to its end (as the non-streamed POST /chat runs it): stored as a
    chat, metered for billing; each agent step and tool call is reported as progress."""
    exchange = Exchange(prepared, to_thread=on_thread)
    step = 0
    try:
        async for event in exchange.events():
            if event.get("type") in ("agent", "tool_start"):
                step += 1
                what = event.get("agent") if event["type"] == "agent" else f"tool {event.get('tool')}"
                await _report(ctx, step, f"{event['type']}: {what}")
        done = await exchange.finish("complete")
    finally:
        await exchange.abandon()
    answer = {
        "id": done["id"],
        "thread_id": done.get("thread_id"),
        "message": done["message"],
        "model": done.get("model"),
        "usage": done.get("usage"),
    }
    if "agents" in done:
        answer["agents"] = done["agents"]
    return answer


async def call_tool(
    ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
) -> types.CallToolResult:
    principal, request_id = _caller(ctx)
    name = params.name
    arguments = dict(params.arguments or {})
    with _bound(principal, request_id):
        try:
            outcome = await on_thread(catalog.call)(principal, name, arguments)
            if outcome.exchange is not None:
                return _tool_result(await _ask_agent(ctx, outcome.exchange))
            if outcome.job is not None:
                return _tool_result(await _follow_job(ctx, principal, outcome.job))
            assert outcome.result is not None
            return _tool_result(outcome.result)
        except MCPError:
            raise
        except Exception as exc:
            return _tool_error(_error_of(exc, request_id))


async def list_resources(
    ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
) -> types.ListResourcesResult:
    principal, request_id = _caller(ctx)
    cursor = params.cursor if params is not None else None
    with _bound(principal, request_id):
        try:
            page = await on_thread(catalog.resources_page)(principal, cursor)
        except Exception as exc:
            raise _rpc_error(_error_of(exc, request_id)) from None
    return types.ListResourcesResult(
        resources=[
            types.Resource(
                uri=catalog.resource_uri(resource.path),
                name=resource.path,
                title=resource.title or None,
                mime_type=catalog.mime_of(resource),
            )
            for resource in page.items
        ],
        next_cursor=page.next_cursor,
    )


async def list_resource_templates(
    ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
) -> types.ListResourceTemplatesResult:
    principal, _ = _caller(ctx)
    templates = []
    if await on_thread(_may_read_some)(principal, "resources"):
        templates.append(
            types.ResourceTemplate(
                uri_template=catalog.RESOURCE_URI + "{+id}",
                name="resource",
                title="A resource of the team",
                description="A resource by its id (e.g. notes/hello), within this key's resource scopes",
            )
        )
    if await on_thread(_may_read_some)(principal, "memory"):
        templates.append(
            types.ResourceTemplate(
                uri_template=catalog.MEMORY_URI + "{+key}",
                name="memory",
                title="A memory item of the team",
                description="A memory value by its key (e.g. user/prefs), within this key's memory scopes",
            )
        )
    return types.ListResourceTemplatesResult(resource_templates=templates)


def _may_read_some(principal: Principal, area: str) -> bool:
    return may_some(principal, area, "read")


async def read_resource(
    ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
) -> types.ReadResourceResult:
    principal, request_id = _caller(ctx)
    uri = str(params.uri)
    with _bound(principal, request_id):
        try:
            mime, text = await on_thread(catalog.read_uri)(principal, uri)
        except Exception as exc:
            raise _rpc_error(_error_of(exc, request_id)) from None
    return types.ReadResourceResult(contents=[types.TextResourceContents(uri=uri, mime_type=mime, text=text)])


def tool_input_schema(name: str) -> Mapping[str, Any] | None:
    """The SDK's `get_tool_input_schema` hook: the schema a 2026-07-28 tools/call's Mcp-Param-*
    headers are checked against. Without the hook the SDK runs the whole tools/list handler inside
    every tools/call to find it (a second worker-thread trip and the agents' query: most of what a
    call cost over POST /tools/:id). The hook is called on the event loop with the name alone, so
    the door resolves the schema for its caller beforehand, in the trip that authenticates it;
    None (nothing to check) for a tool this caller is not offered, as the listing would find."""
    prepared = PREPARED.get()
    if prepared is None or prepared.called != name:
        return None
    return prepared.schema


def build_server() -> Server[Any]:
    server: Server[Any] = Server(
        "slop-platform",
        version="1",
        title="SLOP Platform",
        instructions=(
            "The team's tools, resources, memory (memory_search, memory_write) and agents (ask_<agent>), "
            "bound by the API key's scopes."
        ),
        get_tool_input_schema=tool_input_schema,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_resource_templates,
        on_read_resource=read_resource,
    )
    return server
