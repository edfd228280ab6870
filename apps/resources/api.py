"""The /resources endpoints (PROTOCOL.md §8): thin views over selectors and services."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.http import QueryDict
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import ApplicationError, ValidationFailed
from apps.core.pagination import page_params, parse_limit
from apps.core.parsers import JSONParser, MultiPartParser
from apps.resources import selectors, services
from apps.resources.ids import normalise_prefix, resource_id_problem, validate_resource_id
from apps.resources.ingestion import extract_text
from apps.resources.models import Resource
from apps.resources.search import resource_search
from apps.tenants.access import Context, Need, NeedSome, readable, url
from apps.tenants.api import SlopView, json_body

MAX_TITLE = 500
MAX_TYPE = 100
MAX_QUERY = 1000
UPLOAD_TYPE = "file"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def resource_summary(resource: Resource) -> dict[str, Any]:
    return {
        "id": resource.path,
        "title": resource.title,
        "type": resource.type,
        "metadata": resource.metadata,
        "created_at": iso(resource.created_at),
        "updated_at": iso(resource.updated_at),
    }


def resource_detail(resource: Resource) -> dict[str, Any]:
    return {**resource_summary(resource), "content": resource.content}


def _has_nul(value: Any) -> bool:
    """PostgreSQL text and jsonb cannot hold U+0000."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _text_field(
    data: dict[str, Any], name: str, errors: dict[str, list[str]], *, maximum: int | None, required: bool
) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            errors[name] = ["This field is required."]
        return None
    if not isinstance(value, str):
        errors[name] = [f"Must be a string, not {type(value).__name__}."]
        return None
    if maximum is not None and not value.strip():
        errors[name] = ["May not be blank."]
        return None
    if maximum is not None and len(value) > maximum:
        errors[name] = [f"At most {maximum} characters (got {len(value)})."]
        return None
    if "\x00" in value:
        errors[name] = ["May not contain NUL characters."]
        return None
    return value


def _metadata(value: Any, errors: dict[str, list[str]]) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):  # a multipart form field carries JSON text
        try:
            value = json.loads(value)
        except ValueError:
            errors["metadata"] = ["Must be a JSON object."]
            return None
    if not isinstance(value, dict):
        errors["metadata"] = [f"Must be a JSON object, not {type(value).__name__}."]
        return None
    if _has_nul(value):
        errors["metadata"] = ["May not contain NUL characters."]
        return None
    return value


def _fields(data: dict[str, Any], *, creating: bool) -> tuple[dict[str, Any], dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}
    fields = {
        "title": _text_field(data, "title", errors, maximum=MAX_TITLE, required=creating),
        "type": _text_field(data, "type", errors, maximum=MAX_TYPE, required=False),
        "content": _text_field(data, "content", errors, maximum=None, required=False),
        "metadata": _metadata(data.get("metadata"), errors),
    }
    return fields, errors


def _uploaded_text(upload: UploadedFile) -> tuple[str, dict[str, Any]]:
    limit = settings.RESOURCES_MAX_UPLOAD_BYTES
    if upload.size is not None and upload.size > limit:
        raise ApplicationError(
            f"The file is {upload.size} bytes; the limit is {limit} bytes",
            code="payload_too_large",
            status=413,
            extra={"limit_bytes": limit},
        )
    name = upload.name or "upload"
    content_type = upload.content_type or ""
    extracted = extract_text(data=upload.read(), file_name=name, content_type=content_type)
    info = {"name": name, "content_type": content_type, "size_bytes": upload.size, "kind": extracted.kind}
    return extracted.text, info


def _form_data(request: Request) -> tuple[dict[str, Any], UploadedFile | None]:
    """The body as a dict, plus the uploaded file for a multipart request."""
    if request.content_type and request.content_type.startswith("multipart/"):
        upload = request.FILES.get("file")
        form = cast(QueryDict, request.data)
        data = {key: form.get(key) for key in form if key != "file"}
        if upload is not None and data.get("content") is not None:
            raise ValidationFailed({"content": ["Send either a file or content, not both."]})
        return data, upload
    return json_body(request), None


def _posted_id(context: Context) -> str:
    """The id a POST creates: the `id` field, else the uploaded file's name."""
    data, upload = _form_data(context.request)
    raw_id = data.get("id")
    if raw_id is None and upload is not None:
        raw_id = upload.name
    if raw_id is None:
        raise ValidationFailed({"id": ["This field is required."]})
    if (problem := resource_id_problem(raw_id)) is not None:
        raise ValidationFailed({"id": [problem]})
    return str(raw_id)


def _folder(prefix: str) -> str:
    return normalise_prefix(prefix) + "/"


_ID_IN_URL = url("resource_id", validate=validate_resource_id)


class ResourceView(SlopView):
    parser_classes = [JSONParser, MultiPartParser]

    def readable_ids(self) -> list[str] | None:
        return readable(self.principal, "resources")


class ResourceListView(ResourceView):
    info_description = (
        "List resources (?type=, ?prefix=, cursor pagination) or create one (JSON or file upload)"
    )
    access = {
        "GET": NeedSome("resources", "read"),  # the list holds only readable ids
        "POST": Need("resources", "write", _posted_id),
    }

    def get(self, request: Request) -> Response:
        cursor, limit = page_params(request.query_params)
        page = selectors.resource_list(
            tenant=self.tenant,
            readable_prefixes=self.readable_ids(),
            cursor=cursor,
            limit=limit,
            type=request.query_params.get("type") or None,
            prefix=request.query_params.get("prefix") or None,
        )
        return Response(
            {"resources": [resource_summary(item) for item in page.items], "next_cursor": page.next_cursor}
        )

    def post(self, request: Request) -> Response:
        data, upload = _form_data(request)
        fields, errors = _fields(data, creating=upload is None)
        raw_id = data.get("id")
        if raw_id is None and upload is not None:
            raw_id = upload.name
        if raw_id is None:
            errors["id"] = ["This field is required."]
        elif (problem := resource_id_problem(raw_id)) is not None:
            errors["id"] = [problem]
        if errors:
            raise ValidationFailed(errors)
        resource_id = str(raw_id)
        metadata = fields["metadata"] or {}
        if upload is not None:
            fields["content"], metadata["file"] = _uploaded_text(upload)
            fields["title"] = fields["title"] or upload.name
            fields["type"] = fields["type"] or UPLOAD_TYPE
        resource = services.resource_create(
            tenant=self.tenant,
            resource_id=resource_id,
            title=fields["title"],
            type=fields["type"],
            content=fields["content"] or "",
            metadata=metadata,
        )
        return Response({"status": "created", "resource": resource_detail(resource)}, status=201)


class ResourceSearchView(ResourceView):
    info_description = "Search resources by words and meaning together (?q=, ?type=, ?prefix=, ?limit=)"
    access = {"GET": NeedSome("resources", "read")}  # results hold only readable ids

    def get(self, request: Request) -> Response:
        query = (request.query_params.get("q") or "").strip()
        if not query:
            raise ValidationFailed({"q": ["Search query is required."]}, "Search query is required (?q=...)")
        if len(query) > MAX_QUERY or "\x00" in query:
            raise ValidationFailed({"q": [f"At most {MAX_QUERY} characters, no NUL characters."]})
        limit = parse_limit(request.query_params.get("limit"), default=10, maximum=100)
        hits = resource_search(
            tenant=self.tenant,
            query=query,
            readable_prefixes=self.readable_ids(),
            limit=limit,
            type=request.query_params.get("type") or None,
            prefix=request.query_params.get("prefix") or None,
        )
        return Response(
            {
                "results": [
                    {
                        "id": hit.resource.path,
                        "title": hit.resource.title,
                        "type": hit.resource.type,
                        "score": hit.score,
                        "snippet": hit.snippet,
                    }
                    for hit in hits
                ]
            }
        )


class ResourcePrefixView(ResourceView):
    info_description = "List the resources under a path (notes → notes/hello, notes/todo)"
    access = {"GET": NeedSome("resources", "read", ident=url("prefix", validate=_folder))}

    def get(self, request: Request, prefix: str) -> Response:
        folder = normalise_prefix(prefix)
        if not folder:
            raise ValidationFailed({"prefix": ["Name a path, e.g. /resources/prefix/notes."]})
        cursor, limit = page_params(request.query_params)
        page = selectors.resource_list(
            tenant=self.tenant,
            readable_prefixes=self.readable_ids(),
            cursor=cursor,
            limit=limit,
            type=request.query_params.get("type") or None,
            prefix=folder + "/",
        )
        return Response(
            {"resources": [resource_summary(item) for item in page.items], "next_cursor": page.next_cursor}
        )


class ResourceDetailView(ResourceView):
    info_description = "Get, update (partial; metadata merged) or delete one resource by its hierarchical id"
    access = {
        "GET": Need("resources", "read", _ID_IN_URL),
        "PUT": Need("resources", "write", _ID_IN_URL),
        "PATCH": Need("resources", "write", _ID_IN_URL),
        "DELETE": Need("resources", "write", _ID_IN_URL),
    }

    def get(self, request: Request, resource_id: str) -> Response:
        validate_resource_id(resource_id)
        return Response(resource_detail(selectors.resource_get(tenant=self.tenant, resource_id=resource_id)))

    def put(self, request: Request, resource_id: str) -> Response:
        validate_resource_id(resource_id)
        data, upload = _form_data(request)
        fields, errors = _fields(data, creating=False)
        if errors:
            raise ValidationFailed(errors)
        if upload is not None:
            fields["content"], file_info = _uploaded_text(upload)
            fields["metadata"] = {**(fields["metadata"] or {}), "file": file_info}
        resource = services.resource_update(tenant=self.tenant, resource_id=resource_id, **fields)
        return Response({"status": "updated", "resource": resource_detail(resource)})

    patch = put

    def delete(self, request: Request, resource_id: str) -> Response:
        validate_resource_id(resource_id)
        services.resource_delete(tenant=self.tenant, resource_id=resource_id)
        return Response({"status": "deleted", "id": resource_id})
