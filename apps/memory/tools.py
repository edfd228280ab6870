"""memory_search and memory_write: the built-in tools memory offers, registered with the tools app
in ready(). Both act within the caller's memory scopes: a search returns only readable keys, a write
needs `memory.<key>.write` exactly as POST /memory does (the seed's 403 otherwise)."""

from __future__ import annotations

from typing import Any

from apps.memory.models import KEY_MAX_LENGTH
from apps.memory.selectors import memory_query
from apps.memory.services import memory_item_store, validate_key
from apps.tenants.access import check
from apps.tenants.authentication import Principal
from apps.tenants.scopes import Action
from apps.tools.builtins import SEARCH_PROPERTIES, Builtin


def _memory_search(parameters: dict[str, Any], caller: Principal | None) -> Any:
    assert caller is not None  # needs_caller: tool_call refuses to queue it
    return memory_query(
        principal=caller,
        query=parameters["query"],
        limit=parameters.get("limit", 5),
        key_prefix=parameters.get("key_prefix"),
    )


def _memory_write(parameters: dict[str, Any], caller: Principal | None) -> Any:
    assert caller is not None  # needs_caller: tool_call refuses to queue it
    key = validate_key(parameters["key"])
    check(caller, Action("memory", "write", key))
    memory_item_store(tenant=caller.tenant, key=key, value=parameters["value"])
    return {"status": "stored", "key": key}


MEMORY_SEARCH = Builtin(
    id="memory_search",
    description="Searches the team's memory by meaning; only keys the caller may read",
    schema={
        "type": "object",
        "properties": {
            **SEARCH_PROPERTIES,
            "key_prefix": {"type": "string", "description": "Only keys starting with this"},
        },
        "required": ["query"],
    },
    example={"query": "What theme settings do I have?"},
    safe=True,
    run=_memory_search,
    needs_caller=True,
)

MEMORY_WRITE = Builtin(
    id="memory_write",
    description="Stores a value under a key in the team's memory (creates or overwrites it), "
    "where the caller may write; memory_search finds it by meaning afterwards",
    schema={
        "type": "object",
        "properties": {
            "key": {
                "type": "string",
                "minLength": 1,
                "maxLength": KEY_MAX_LENGTH,
                "description": "Where to store it, e.g. research/solar-panels",
            },
            "value": {
                "type": ["string", "number", "boolean", "object", "array"],
                "description": "What to store: text, or any JSON value",
            },
        },
        "required": ["key", "value"],
    },
    example={"key": "notes/meeting", "value": "The launch moved to Friday."},
    safe=False,  # it writes: tools.safe.* does not reach it
    run=_memory_write,
    needs_caller=True,
)
