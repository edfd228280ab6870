"""resource_search: the built-in tool resources offers, registered with the tools app in ready()."""

from __future__ import annotations

from typing import Any

from apps.resources.search import resource_search
from apps.tenants.access import readable
from apps.tenants.authentication import Principal
from apps.tools.builtins import SEARCH_PROPERTIES, Builtin


def _resource_search(parameters: dict[str, Any], caller: Principal | None) -> Any:
    assert caller is not None  # needs_caller: tool_call refuses to queue it
    hits = resource_search(
        tenant=caller.tenant,
        query=parameters["query"],
        readable_prefixes=readable(caller, "resources"),
        limit=parameters.get("limit", 5),
        type=parameters.get("type"),
        prefix=parameters.get("prefix"),
    )
    return [hit.as_result() for hit in hits]


RESOURCE_SEARCH = Builtin(
    id="resource_search",
    description="Searches the team's resources (documents) by words and meaning; "
    "only resources the caller may read",
    schema={
        "type": "object",
        "properties": {
            **SEARCH_PROPERTIES,
            "type": {"type": "string", "description": "Only resources of this type"},
            "prefix": {"type": "string", "description": "Only resources whose id starts with this"},
        },
        "required": ["query"],
    },
    example={"query": "mars mission timeline", "limit": 3},
    safe=True,
    run=_resource_search,
    needs_caller=True,
)
