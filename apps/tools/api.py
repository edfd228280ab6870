"""HTTP adapters for /tools (PROTOCOL.md §6): authenticate → check scope → validate → one service."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import ApplicationError, ValidationFailed
from apps.core.pagination import page_params, paginate, parse_limit
from apps.tenants.access import Need, allows, url
from apps.tenants.api import SlopView, json_body
from apps.tenants.scopes import Action
from apps.tools.access import job_in_url, tool_in_url
from apps.tools.events import job_as_dict
from apps.tools.models import ToolJob
from apps.tools.selectors import may_read, tool_as_dict, tool_jobs_visible, tools_for
from apps.tools.services import tool_call, tool_delete, tool_job_cancel, tool_job_for, tool_put
from apps.tools.spec import ToolSpec

MAX_WAIT_SECONDS = 30.0
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}


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


def _flag(request: Request, name: str) -> bool:
    value = str(request.query_params.get(name, "")).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValidationFailed({name: ["Must be true or false."]})


def _wait(request: Request) -> float:
    raw = request.query_params.get("wait")
    if raw is None or raw == "":
        return 0.0
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= MAX_WAIT_SECONDS:
        raise ValidationFailed({"wait": [f"Must be a number of seconds between 0 and {MAX_WAIT_SECONDS:g}."]})
    return seconds


class ToolListView(SlopView):
    info_description = "List available tools"
    access = {"GET": Need("tools", "list")}  # then only the tools the caller may read or execute

    def get(self, request: Request) -> Response:
        limit = parse_limit(request.query_params.get("limit"))
        cursor = request.query_params.get("cursor")
        specs = sorted(tools_for(principal=self.principal), key=_sort_key)
        if cursor:
            after = _cursor_key(cursor)
            specs = [spec for spec in specs if _sort_key(spec) > after]
        page = specs[:limit]
        next_cursor = _encode_cursor(page[-1]) if len(specs) > limit else None
        return Response({"tools": [tool_as_dict(spec) for spec in page], "next_cursor": next_cursor})


def _call_parameters(tool_id: str, body: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The parameters and call id: the body itself, or the `{"tool_id", "parameters"}` envelope."""
    if "parameters" in body and set(body) <= {"tool_id", "parameters", "call_id"}:
        parameters = body["parameters"]
        if not isinstance(parameters, dict):
            raise ValidationFailed({"parameters": ["Must be a JSON object."]})
        if body.get("tool_id") not in (None, tool_id):
            raise ValidationFailed({"tool_id": [f"Does not match the tool in the URL ({tool_id})."]})
        call_id = body.get("call_id")
        if call_id is not None and (not isinstance(call_id, str) or len(call_id) > 200):
            raise ValidationFailed({"call_id": ["Must be a string of at most 200 characters."]})
        return parameters, call_id
    return body, None


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

    def get(self, request: Request, tool_id: str) -> Response:
        spec = self.target
        return Response(tool_as_dict(spec, detail=True, show_url=self._may_write(tool_id)))

    def post(self, request: Request, tool_id: str) -> Response:
        run_async = _flag(request, "async")
        wait = _wait(request)
        parameters, call_id = _call_parameters(tool_id, json_body(request))
        answer = tool_call(
            principal=self.principal,
            spec=self.target,
            parameters=parameters,
            call_id=call_id,
            wait_seconds=wait,
            run_async=run_async,
        )
        return Response(answer, status=202 if "job_id" in answer else 200)

    def put(self, request: Request, tool_id: str) -> Response:
        spec, created, secret = tool_put(principal=self.principal, tool_id=tool_id, data=json_body(request))
        body = tool_as_dict(spec, detail=True, show_url=True)
        if secret is not None:
            body["signing_secret"] = secret  # shown once; store it to verify X-SLOP-Signature
        return Response(body, status=201 if created else 200)

    def delete(self, request: Request, tool_id: str) -> Response:
        tool_delete(principal=self.principal, tool_id=tool_id)
        return Response({"status": "deleted", "id": tool_id})

    def _may_write(self, tool_id: str) -> bool:
        return allows(self.principal, Action("tools", "write", tool_id))


class ToolJobListView(SlopView):
    info_description = "List recent tool jobs (?tool=, ?status=)"
    access = {"GET": Need("tools", "list")}  # then only jobs of tools the caller may read or execute

    def get(self, request: Request) -> Response:
        cursor, limit = page_params(request.query_params)
        status = request.query_params.get("status") or None
        if status is not None and status not in ToolJob.Status.values:
            raise ValidationFailed({"status": [f"Must be one of {', '.join(ToolJob.Status.values)}."]})
        tool_id = request.query_params.get("tool") or None
        if tool_id is not None and len(tool_id) > 64:
            raise ValidationFailed({"tool": ["At most 64 characters."]})
        jobs = tool_jobs_visible(principal=self.principal, tool_id=tool_id, status=status)
        page = paginate(jobs, cursor=cursor, limit=limit)
        return Response({"jobs": [job_as_dict(job) for job in page.items], "next_cursor": page.next_cursor})


class ToolJobView(SlopView):
    info_description = "Get (GET) or cancel (DELETE) a tool job"
    access = {"GET": job_in_url("read", "execute"), "DELETE": job_in_url("execute")}

    def get(self, request: Request, job_id: str) -> Response:
        return Response(job_as_dict(tool_job_for(job=self.target)))

    def delete(self, request: Request, job_id: str) -> Response:
        return Response(job_as_dict(tool_job_cancel(job=self.target)))


__all__ = ["ApplicationError", "ToolDetailView", "ToolJobView", "ToolListView", "may_read"]
