"""/openapi.json for GET /tools/jobs/{job_id}/stream, a streaming view that drf-spectacular does
not describe by itself (a plain async Django view, or a DRF one whose body is a stream).

A postprocessing hook, so the description holds whichever base class the view has."""

from __future__ import annotations

from typing import Any

from apps.core.openapi import ERROR_DESCRIPTIONS, SCOPE_PARAMETER

PATH = "/tools/jobs/{job_id}/stream"
DESCRIPTION = (
    "Stream a tool job's status changes as server-sent events: each event is `id: <n>` + "
    '`data: {"type": "status", "job_id", "status", "attempts", "result", "error", ...}` (the job as '
    "GET /tools/jobs/{job_id} shows it); after a final status (succeeded, failed, cancelled) comes "
    "`data: [DONE]`. `: keepalive` comments keep an idle stream open; a stream open for an hour ends "
    'with `data: {"type": "error", "code": "stream_timeout"}`.'
)


def _error(status: int) -> dict[str, Any]:
    return {
        "description": ERROR_DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def document_job_stream(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    operation = result.setdefault("paths", {}).setdefault(PATH, {}).setdefault("get", {})
    operation.update(
        {
            "operationId": "tool_job_stream_get",
            "description": DESCRIPTION,
            "tags": ["tools"],
            "parameters": [
                {"in": "path", "name": "job_id", "required": True, "schema": {"type": "string"}},
                {
                    "in": "header",
                    "name": SCOPE_PARAMETER.name,
                    "required": False,
                    "schema": {"type": "string"},
                    "description": SCOPE_PARAMETER.description,
                },
            ],
            "security": [{"ApiKey": []}, {"ApiKeyHeader": []}],
        }
    )
    responses = operation.setdefault("responses", {})
    responses["200"] = {
        "description": "The job's status events (SSE)",
        "content": {"text/event-stream": {"schema": {"$ref": "#/components/schemas/ServerSentEvent"}}},
    }
    for status in (400, 401, 403, 404):
        responses.setdefault(str(status), _error(status))
    for method in [m for m in result["paths"][PATH] if m != "get"]:
        del result["paths"][PATH][method]
    return result
