"""memory_search: the built-in tool memory offers, registered with the tools app in ready()."""

from __future__ import annotations

from typing import Any

from apps.memory.selectors import memory_query
from apps.tenants.authentication import Principal
from apps.tools.builtins import SEARCH_PROPERTIES, Builtin


def _memory_search(parameters: dict[str, Any], caller: Principal | None) -> Any:
    assert caller is not None  # needs_caller: tool_call refuses to queue it
    return memory_query(
        principal=caller,
        query=parameters["query"],
        limit=parameters.get("limit", 5),
        key_prefix=parameters.get("key_prefix"),
    )


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
