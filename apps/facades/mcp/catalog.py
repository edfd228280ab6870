"""What the MCP door offers one key, and what it does when asked: plain synchronous functions over
the platform's services and selectors (they run on a worker thread), in the access vocabulary of
apps/tenants/access.py. Nothing here is a second implementation of a tool, a search or a chat.

- Tools: the tenant's tools the effective scope may *execute* (what /chat offers a model), run by
  `tool_call` exactly as POST /tools/:id runs them (schema validation, quotas, metering, jobs).
- `memory_search` / `memory_write`: the memory door, bound by the memory scopes as
  POST /memory/query and POST /memory are (not by a tools scope). The built-in tools of the same
  names are therefore not listed a second time.
- `ask_<agent>`: an agent the key may execute (`agents.<id>.execute`), run as POST /chat with
  `"agent"` (`chat.write`, or `chat.<thread_id>.write` with a thread), stored and metered like it.
- Resources: `slop://resources/<id>` within the resource scopes; memory items can be read as
  `slop://memory/<key>` (a resource template) within the memory scopes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from apps.agents.models import Agent
from apps.chat.access import SEND
from apps.chat.services import PreparedExchange, exchange_prepare
from apps.core.errors import ApplicationError, NotFound, ValidationFailed
from apps.core.pagination import Page
from apps.memory.selectors import memory_item_get, memory_query
from apps.memory.services import memory_item_store, validate_key
from apps.resources.ids import resource_id_problem
from apps.resources.models import Resource
from apps.resources.selectors import resource_get, resource_list
from apps.tenants.access import Context, NeedSome, allows, check, enforce, enforce_target, may_some, readable
from apps.tenants.authentication import Principal
from apps.tenants.scopes import Action
from apps.tools.access import tool_target
from apps.tools.models import ToolJob
from apps.tools.selectors import tenant_tool_ids, tool_executable_by, tool_job_get, tools_executable_by
from apps.tools.services import tool_call, tool_job_cancel, tool_job_for
from apps.tools.spec import ToolSpec

AGENT_TOOL_PREFIX = "ask_"
MEMORY_SEARCH = "memory_search"
MEMORY_WRITE = "memory_write"
RESOURCE_URI = "slop://resources/"
MEMORY_URI = "slop://memory/"
LIST_LIMIT = 200

_MEMORY_SEARCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "minLength": 1, "description": "What to look for, by meaning"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 100, "description": "How many (default 10)"},
        "key_prefix": {"type": "string", "description": "Only keys starting with this"},
        "min_score": {"type": "number", "minimum": 0, "maximum": 1, "description": "Lowest score, 0-1"},
    },
    "required": ["query"],
    "additionalProperties": False,
}
_MEMORY_WRITE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "key": {"type": "string", "minLength": 1, "maxLength": 512, "description": "e.g. notes/meeting"},
        "value": {"description": "Any JSON value: text, a number, an object, a list"},
    },
    "required": ["key", "value"],
    "additionalProperties": False,
}
_ASK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "message": {"type": "string", "minLength": 1, "description": "What to ask the agent"},
        "thread_id": {
            "type": "string",
            "description": "Continue (or start) this conversation thread: thread_ + 1-64 of A-Za-z0-9_-",
        },
    },
    "required": ["message"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Offered:
    """One entry of tools/list."""

    name: str
    description: str
    input_schema: dict[str, Any]
    title: str | None = None
    long_running: bool = False
    read_only: bool = False


def _object_schema(schema: dict[str, Any]) -> dict[str, Any]:
    # MCP wants an object schema at the root; a tool's schema is one (apps/tools/schemas.py).
    return schema if schema.get("type") == "object" else {"type": "object", **schema}


def _may_chat(principal: Principal) -> bool:
    return allows(principal, Action("chat", "write", None))


def executable_agents(principal: Principal) -> list[Agent]:
    """The team's agents this key may run as tools: `agents.<id>.execute` and `chat.write`."""
    if not _may_chat(principal):
        return []
    ids = readable(principal, "agents", "execute")
    agents = Agent.objects.for_tenant(principal.tenant).only("slug", "name", "description").order_by("slug")
    if ids is not None:
        agents = agents.filter(slug__in=ids)
    return list(agents)


def offered_tools(principal: Principal) -> list[Offered]:
    """tools/list: only what this key may run, never another team's."""
    offered: list[Offered] = []
    for spec in tools_executable_by(principal=principal):
        if spec.id in (MEMORY_SEARCH, MEMORY_WRITE):
            continue  # offered below, bound by the memory scopes
        offered.append(
            Offered(
                name=spec.id,
                description=spec.description
                + (" (runs as a job; progress is reported)" if spec.long_running else ""),
                input_schema=_object_schema(spec.schema),
                long_running=spec.long_running,
            )
        )
    if may_some(principal, "memory", "read"):
        offered.append(
            Offered(
                name=MEMORY_SEARCH,
                description="Searches the team's memory by meaning; only keys this key may read",
                input_schema=_MEMORY_SEARCH_SCHEMA,
                read_only=True,
            )
        )
    if may_some(principal, "memory", "write"):
        offered.append(
            Offered(
                name=MEMORY_WRITE,
                description="Stores a JSON value under a key of the team's memory (creates or overwrites)",
                input_schema=_MEMORY_WRITE_SCHEMA,
            )
        )
    # A team's tool named ask_<x> wins over its agent <x>, for every key: tools/call runs the tool
    # (or refuses it: disabled, out of the key's scopes), so the agent is never listed under that
    # name either. The agent stays reachable through POST /chat {"agent": "<x>"}.
    taken = tenant_tool_ids(tenant_id=int(principal.tenant.pk))
    for agent in executable_agents(principal):
        name = AGENT_TOOL_PREFIX + agent.slug
        if name in taken:
            continue
        offered.append(
            Offered(
                name=name,
                title=agent.name or agent.slug,
                description=f"Ask the team's agent {agent.slug!r}: {agent.description or agent.name}",
                input_schema=_ASK_SCHEMA,
            )
        )
    return offered


def offered_call(principal: Principal, name: str) -> tuple[dict[str, Any] | None, bool]:
    """For a tools/call of `name`, found without building the whole list: the input schema
    tools/list shows this key for it (None when it lists no such tool), which the SDK checks a
    2026-07-28 call's Mcp-Param-* headers against; and whether the call may run long (a
    long-running tool's job, an agent's run). An `ask_<agent>` gets its fixed schema unlooked-up:
    it declares no header, so whether the agent exists changes nothing there (tools/call answers)."""
    if name in (MEMORY_SEARCH, MEMORY_WRITE):
        if not may_some(principal, "memory", "read" if name == MEMORY_SEARCH else "write"):
            return None, False
        return (_MEMORY_SEARCH_SCHEMA if name == MEMORY_SEARCH else _MEMORY_WRITE_SCHEMA), False
    spec = tool_executable_by(principal=principal, tool_id=name)
    if spec is not None:
        return _object_schema(spec.schema), spec.long_running
    if name.startswith(AGENT_TOOL_PREFIX) and name not in tenant_tool_ids(tenant_id=int(principal.tenant.pk)):
        return _ASK_SCHEMA, True
    return None, False


# --- tools/call ---------------------------------------------------------------------------------


def _arguments(arguments: dict[str, Any], schema_keys: set[str]) -> dict[str, Any]:
    unknown = sorted(set(arguments) - schema_keys)
    if unknown:  # refused, never ignored
        raise ValidationFailed({name: ["Unknown argument: this tool does not take it."] for name in unknown})
    return arguments


def memory_search(principal: Principal, arguments: dict[str, Any]) -> dict[str, Any]:
    """POST /memory/query's declaration and selector: readable keys only; no memory scope → 403."""
    enforce(principal, NeedSome("memory", "read"), Context())
    arguments = _arguments(arguments, set(_MEMORY_SEARCH_SCHEMA["properties"]))
    limit = arguments.get("limit", 10)
    min_score = arguments.get("min_score", 0.0)
    details: dict[str, list[str]] = {}
    if not isinstance(limit, int) or isinstance(limit, bool):
        details["limit"] = ["Must be an integer."]
    if not isinstance(min_score, int | float) or isinstance(min_score, bool):
        details["min_score"] = ["Must be a number."]
    if details:
        raise ValidationFailed(details)
    results = memory_query(
        principal=principal,
        query=arguments.get("query"),  # type: ignore[arg-type]  # the selector refuses a non-string
        limit=limit,
        key_prefix=arguments.get("key_prefix"),
        min_score=min_score,
    )
    return {"results": results}


def memory_write(principal: Principal, arguments: dict[str, Any]) -> dict[str, Any]:
    """POST /memory's declaration (`memory.<key>.write`) and service."""
    arguments = _arguments(arguments, set(_MEMORY_WRITE_SCHEMA["properties"]))
    if "value" not in arguments:
        raise ValidationFailed({"value": ["Required."]})
    key = validate_key(arguments.get("key"))
    check(principal, Action("memory", "write", key))
    memory_item_store(tenant=principal.tenant, key=key, value=arguments["value"])
    return {"status": "stored", "key": key}


def agent_prepare(principal: Principal, name: str, arguments: dict[str, Any]) -> PreparedExchange:
    """POST /chat {"agent": …}'s declarations and preparation (validation, model, quotas)."""
    agent_id = name[len(AGENT_TOOL_PREFIX) :]
    arguments = _arguments(arguments, set(_ASK_SCHEMA["properties"]))
    message = arguments.get("message")
    if not isinstance(message, str) or not message.strip():
        raise ValidationFailed({"message": ["Required: a non-empty string."]})
    body: dict[str, Any] = {"messages": [{"role": "user", "content": message}], "agent": agent_id}
    if arguments.get("thread_id") is not None:
        body["thread_id"] = arguments["thread_id"]
    enforce(principal, SEND, Context(body_reader=lambda: body))
    check(principal, Action("agents", "execute", agent_id))
    if not Agent.objects.for_tenant(principal.tenant).filter(slug=agent_id).exists():
        raise NotFound(f"Tool not found: {name}")
    return exchange_prepare(principal=principal, body=body)


@dataclass(frozen=True)
class Outcome:
    """What a tools/call came to, decided in one trip to a worker thread: a finished result, a tool's
    job to wait for, or an agent's exchange to run (on the event loop)."""

    result: dict[str, Any] | None = None
    job: dict[str, Any] | None = None
    exchange: PreparedExchange | None = None


def call(principal: Principal, name: str, arguments: dict[str, Any]) -> Outcome:
    """tools/call. A tool is POST /tools/:id: its declaration (`tools.<id>.execute`, or
    `tools.safe.*` for a safe one; the 403 before the 404), then `tool_call` (a long-running tool
    answers with its job). `ask_<agent>` is an agent unless the team has a tool of that id (which
    wins, as in offered_tools)."""
    if name == MEMORY_SEARCH:
        return Outcome(result=memory_search(principal, arguments))
    if name == MEMORY_WRITE:
        return Outcome(result=memory_write(principal, arguments))
    target = tool_target(principal, name, "execute")
    if target.obj is None and name.startswith(AGENT_TOOL_PREFIX):
        return Outcome(exchange=agent_prepare(principal, name, arguments))
    spec: ToolSpec = enforce_target(principal, target)
    answer = tool_call(principal=principal, spec=spec, parameters=arguments)
    if "job_id" in answer:
        return Outcome(job=answer)
    return Outcome(result={"result": answer["result"]})


def job_current(tenant_id: int, job_id: str) -> ToolJob:
    return tool_job_for(job=tool_job_get(tenant=tenant_id, job_id=job_id))


def job_cancel(tenant_id: int, job_id: str) -> None:
    tool_job_cancel(job=tool_job_get(tenant=tenant_id, job_id=job_id))


# --- resources ----------------------------------------------------------------------------------

_MIME = {"markdown": "text/markdown", "html": "text/html", "json": "application/json"}


def resource_uri(resource_id: str) -> str:
    return RESOURCE_URI + quote(resource_id, safe="/")


def mime_of(resource: Resource) -> str:
    return _MIME.get(resource.type, "text/plain")


def resources_page(principal: Principal, cursor: str | None) -> Page:
    """resources/list: GET /resources's selector (readable ids only; another team's never)."""
    return resource_list(
        tenant=principal.tenant,
        readable_prefixes=readable(principal, "resources"),
        cursor=cursor,
        limit=LIST_LIMIT,
    )


def read_uri(principal: Principal, uri: str) -> tuple[str, str]:
    """resources/read: (mime type, text) of a resource or memory item the key may read. Another
    team's URI is not found, exactly as a missing one (the lookups are the tenant's own)."""
    if uri.startswith(RESOURCE_URI):
        resource_id = unquote(uri[len(RESOURCE_URI) :])
        if resource_id_problem(resource_id) is not None:
            raise NotFound(f"Resource not found: {uri}")
        check(principal, Action("resources", "read", resource_id))
        resource = resource_get(tenant=principal.tenant, resource_id=resource_id)
        return mime_of(resource), resource.content
    if uri.startswith(MEMORY_URI):
        key = unquote(uri[len(MEMORY_URI) :])
        try:
            key = validate_key(key)
        except ApplicationError:
            raise NotFound(f"Resource not found: {uri}") from None
        check(principal, Action("memory", "read", key))
        item = memory_item_get(tenant=principal.tenant, key=key)
        value = item.value
        if isinstance(value, str):
            return "text/plain", value
        return "application/json", json.dumps(value, ensure_ascii=False)
    raise NotFound(f"Resource not found: {uri}")
