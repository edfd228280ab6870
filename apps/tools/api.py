"""HTTP adapters for /tools (PROTOCOL.md §6): authenticate → check scope → validate → one service."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import ApplicationError, ValidationFailed
from apps.core.openapi import error_responses
from apps.core.pagination import paginate
from apps.core.serializers import PageQuerySerializer, page_query, validated, validated_query
from apps.tenants.access import Need, allows, url
from apps.tenants.api import SlopView, json_body
from apps.tenants.scopes import Action
from apps.tools.access import job_in_url, tool_in_url
from apps.tools.events import job_as_dict
from apps.tools.selectors import may_read, tool_as_dict, tool_jobs_visible, tools_for
from apps.tools.serializers import (
    ToolCallEnvelopeSerializer,
    ToolCallQuerySerializer,
    ToolDeletedSerializer,
    ToolDetailSerializer,
    ToolJobAcceptedSerializer,
    ToolJobListQuerySerializer,
    ToolJobListSerializer,
    ToolJobSerializer,
    ToolListSerializer,
    ToolResultSerializer,
    WebhookToolSerializer,
)
from apps.tools.services import tool_call, tool_delete, tool_job_cancel, tool_job_for, tool_put
from apps.tools.spec import ToolSpec


def _sort_key(spec: ToolSpec) -> list[Any]:
    return [0 if spec.kind == "builtin" else 1, spec.id]


def _cursor_key(cursor: str) -> list[Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(key, list) and len(key) == 2 and isinstance(key[0], int) and isinstance(key[1], str):
            return key
    except (ValueError, binascii.Error):
        pass
    raise ValidationFailed({"cursor": ["Not a cursor this server issued."]})


def _encode_cursor(spec: ToolSpec) -> str:
    return base64.urlsafe_b64encode(json.dumps(_sort_key(spec)).encode()).decode().rstrip("=")


class ToolListView(SlopView):
    info_description = "List available tools"
    access = {"GET": Need("tools", "list")}  # then only the tools the caller may read or execute

    @extend_schema(parameters=[PageQuerySerializer], responses={200: ToolListSerializer})
    def get(self, request: Request) -> Response:
        """The tools this caller may read or execute: built-ins first, then the team's webhooks."""
        query = page_query(request.query_params)
        limit, cursor = query["limit"], query["cursor"]
        specs = sorted(tools_for(principal=self.principal), key=_sort_key)
        if cursor:
            after = _cursor_key(cursor)
            specs = [spec for spec in specs if _sort_key(spec) > after]
        page = specs[:limit]
        next_cursor = _encode_cursor(page[-1]) if len(specs) > limit else None
        return Response({"tools": [tool_as_dict(spec) for spec in page], "next_cursor": next_cursor})


def _call_parameters(tool_id: str, body: Any) -> tuple[dict[str, Any], str | None]:
    """The parameters and call id: the body itself, or the `{"tool_id", "parameters"}` envelope."""
    if not isinstance(body, dict):
        validated(ToolCallEnvelopeSerializer, body)  # the 400 for a body that is not an object
    if "parameters" in body and set(body) <= {"tool_id", "parameters", "call_id"}:
        envelope = validated(ToolCallEnvelopeSerializer, body)
        if envelope.get("tool_id") not in (None, tool_id):
            raise ValidationFailed({"tool_id": [f"Does not match the tool in the URL ({tool_id})."]})
        return envelope["parameters"], envelope.get("call_id")
    return body, None


# The parameters are per tool (GET /tools/{id} has their schema), so the body is any object; the
# envelope form is the same object with the parameters inside.
CALL_BODY = {
    "application/json": {
        "type": "object",
        "additionalProperties": True,
        "description": 'The tool\'s parameters, or {"tool_id", "parameters": {...}, "call_id"}',
    }
}


TOOL_PATH = OpenApiParameter(
    "tool_id", str, OpenApiParameter.PATH, examples=[OpenApiExample("A built-in tool", value="calculator")]
)


class ToolDetailView(SlopView):
    info_description = (
        "Get tool details (GET), use a tool (POST), register (PUT) or delete (DELETE) a webhook tool"
    )
    access = {
        "GET": tool_in_url("read"),
        "POST": tool_in_url("execute"),
        "PUT": Need("tools", "write", url("tool_id")),  # creates: no tool to load yet
        "DELETE": tool_in_url("write"),
    }

    @extend_schema(parameters=[TOOL_PATH], responses={200: ToolDetailSerializer})
    def get(self, request: Request, tool_id: str) -> Response:
        """The tool with its full JSON Schema (`schema`) and an `example` call."""
        spec = self.target
        return Response(tool_as_dict(spec, detail=True, show_url=self._may_write(tool_id)))

    @extend_schema(
        request=CALL_BODY,
        parameters=[TOOL_PATH, ToolCallQuerySerializer],
        responses={
            200: ToolResultSerializer,
            202: ToolJobAcceptedSerializer,
            **error_responses(402, 502, 504),
        },
    )
    def post(self, request: Request, tool_id: str) -> Response:
        """Run the tool with its parameters as the body (`{"expression": "15 * 7"}`), or wrapped as
        `{"tool_id", "parameters", "call_id"}`. The parameters are validated against the tool's
        schema (400 with details). A long-running tool (or ?async=true) answers 202 with a job."""
        query = validated_query(ToolCallQuerySerializer, request.query_params)
        run_async = bool(query.get("async"))
        wait = query.get("wait") or 0.0
        parameters, call_id = _call_parameters(tool_id, request.data)
        answer = tool_call(
            principal=self.principal,
            spec=self.target,
            parameters=parameters,
            call_id=call_id,
            wait_seconds=wait,
            run_async=run_async,
        )
        return Response(answer, status=202 if "job_id" in answer else 200)

    @extend_schema(
        request=WebhookToolSerializer,
        parameters=[TOOL_PATH],
        responses={200: ToolDetailSerializer, 201: ToolDetailSerializer, **error_responses(409)},
    )
    def put(self, request: Request, tool_id: str) -> Response:
        """Register (201) or replace (200) a webhook tool; a new signing secret is shown once. For a
        built-in tool only enabled, safe and long_running can be set."""
        spec, created, secret = tool_put(principal=self.principal, tool_id=tool_id, data=json_body(request))
        body = tool_as_dict(spec, detail=True, show_url=True)
        if secret is not None:
            body["signing_secret"] = secret  # shown once; store it to verify X-SLOP-Signature
        return Response(body, status=201 if created else 200)

    @extend_schema(parameters=[TOOL_PATH], responses={200: ToolDeletedSerializer, **error_responses(409)})
    def delete(self, request: Request, tool_id: str) -> Response:
        """Delete a webhook tool (built-in tools cannot be deleted: disable them with PUT)."""
        tool_delete(principal=self.principal, tool_id=tool_id)
        return Response({"status": "deleted", "id": tool_id})

    def _may_write(self, tool_id: str) -> bool:
        return allows(self.principal, Action("tools", "write", tool_id))


class ToolJobListView(SlopView):
    info_description = "List recent tool jobs (?tool=, ?status=)"
    access = {"GET": Need("tools", "list")}  # then only jobs of tools the caller may read or execute

    @extend_schema(parameters=[ToolJobListQuerySerializer], responses={200: ToolJobListSerializer})
    def get(self, request: Request) -> Response:
        """Jobs of the tools this caller may read or execute, newest first."""
        query = page_query(request.query_params, ToolJobListQuerySerializer)
        jobs = tool_jobs_visible(
            principal=self.principal, tool_id=query.get("tool") or None, status=query.get("status") or None
        )
        page = paginate(jobs, cursor=query["cursor"], limit=query["limit"])
        return Response({"jobs": [job_as_dict(job) for job in page.items], "next_cursor": page.next_cursor})


class ToolJobView(SlopView):
    info_description = "Get (GET) or cancel (DELETE) a tool job"
    access = {"GET": job_in_url("read", "execute"), "DELETE": job_in_url("execute")}

    @extend_schema(responses={200: ToolJobSerializer})
    def get(self, request: Request, job_id: str) -> Response:
        return Response(job_as_dict(tool_job_for(job=self.target)))

    @extend_schema(responses={200: ToolJobSerializer, **error_responses(409)})
    def delete(self, request: Request, job_id: str) -> Response:
        """Cancel a queued or running job; answers the job as it now is."""
        return Response(job_as_dict(tool_job_cancel(job=self.target)))


__all__ = ["ApplicationError", "ToolDetailView", "ToolJobView", "ToolListView", "may_read"]
