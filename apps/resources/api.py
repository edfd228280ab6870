"""The /resources endpoints (PROTOCOL.md §8): thin views over selectors and services."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from django.core.files.uploadedfile import UploadedFile
from django.http import QueryDict
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import ValidationFailed
from apps.core.openapi import error_responses
from apps.core.parsers import JSONParser, MultiPartParser
from apps.core.serializers import page_query, validated, validated_query
from apps.resources import selectors, services
from apps.resources.ids import normalise_prefix, resource_id_problem, validate_resource_id
from apps.resources.indexing import indexing_state
from apps.resources.ingestion import uploaded_file_text
from apps.resources.models import Resource
from apps.resources.search import resource_search
from apps.resources.serializers import (
    ResourceCreateSerializer,
    ResourceDeletedSerializer,
    ResourceDetailSerializer,
    ResourceFieldsSerializer,
    ResourceIndexingSerializer,
    ResourceListQuerySerializer,
    ResourceListSerializer,
    ResourceSearchQuerySerializer,
    ResourceSearchSerializer,
    ResourceUploadSerializer,
    ResourceWrittenSerializer,
)
from apps.tenants.access import Context, Need, NeedSome, readable, url
from apps.tenants.api import SlopView
from apps.tools.events import job_as_dict

UPLOAD_TYPE = "file"
ID_PATH = OpenApiParameter(
    "resource_id",
    str,
    OpenApiParameter.PATH,
    description="The whole rest of the path: notes/hello",
    examples=[OpenApiExample("The seed's resource", value="notes/hello")],
)
WRITE_BODY = {"application/json": ResourceFieldsSerializer, "multipart/form-data": ResourceUploadSerializer}


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
    job = resource.index_job if resource.index_job_id is not None else None
    return {
        **resource_summary(resource),
        "content": resource.content,
        "indexing": indexing_state(resource),
        "indexing_job": job.public_id if job is not None else None,
    }


def written(resource: Resource, status: str, *, done: int) -> Response:
    """A write's answer: `done` (201, 200) when the resource is searchable by meaning already; 202
    with its job when the chunks are still being embedded (searchable by words meanwhile)."""
    body: dict[str, Any] = {"status": status, "resource": resource_detail(resource)}
    body["indexing"] = body["resource"]["indexing"]
    if body["indexing"] != "pending" or resource.index_job is None:
        return Response(body, status=done)
    job = job_as_dict(resource.index_job)
    body.update({name: job[name] for name in ("job_id", "status_url", "stream_url")})
    return Response(body, status=202)


def _fields(request: Request, *, creating: bool) -> dict[str, Any]:
    """The validated body: JSON (ResourceCreateSerializer / ResourceFieldsSerializer) or a
    multipart form, with or without a file (ResourceUploadSerializer)."""
    if request.content_type and request.content_type.startswith("multipart/"):
        form = cast(QueryDict, request.data)
        data: dict[str, Any] = {key: form.get(key) for key in form if key != "file"}
        if "file" in request.FILES:
            data["file"] = request.FILES["file"]
        return validated(ResourceUploadSerializer, data, creating=creating)
    return validated(ResourceCreateSerializer if creating else ResourceFieldsSerializer, request.data)


def _posted_id(context: Context) -> str:
    """The id a POST creates (for its scope check, before the body is validated): the `id`
    field, else the uploaded file's name."""
    request = context.request
    data = request.data
    if not isinstance(data, dict):
        validated(ResourceCreateSerializer, data)  # the 400 for a body that is not an object
    raw_id = data.get("id")
    if raw_id is None and "file" in request.FILES:
        raw_id = request.FILES["file"].name
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

    @extend_schema(parameters=[ResourceListQuerySerializer], responses={200: ResourceListSerializer})
    def get(self, request: Request) -> Response:
        """The resources this caller may read, newest first; ?type= and ?prefix= filter."""
        readable = self.readable_ids()
        query = page_query(request.query_params, ResourceListQuerySerializer)
        page = selectors.resource_list(
            tenant=self.tenant,
            readable_prefixes=readable,
            cursor=query["cursor"],
            limit=query["limit"],
            type=query.get("type") or None,
            prefix=query.get("prefix") or None,
        )
        return Response(
            {"resources": [resource_summary(item) for item in page.items], "next_cursor": page.next_cursor}
        )

    @extend_schema(
        request={
            "application/json": ResourceCreateSerializer,
            "multipart/form-data": ResourceUploadSerializer,
        },
        responses={
            201: ResourceWrittenSerializer,
            202: ResourceIndexingSerializer,
            **error_responses(409, 422),
        },
    )
    def post(self, request: Request) -> Response:
        """Create a resource from JSON, or from an uploaded file whose text becomes its content;
        409 when the id exists. Content longer than SLOP_RESOURCES_ASYNC_INDEX_CHARS answers 202:
        searchable by words now, by meaning when the job (`job_id`, `status_url`) succeeds."""
        fields = _fields(request, creating=True)
        upload: UploadedFile | None = fields.pop("file", None)
        resource_id = str(fields.get("id") or (upload.name if upload is not None else ""))
        if upload is not None and "id" not in fields:
            validate_resource_id(resource_id)
        metadata = fields.get("metadata") or {}
        if upload is not None:
            fields["content"], metadata["file"] = uploaded_file_text(upload)
            fields["title"] = fields.get("title") or upload.name
            fields["type"] = fields.get("type") or UPLOAD_TYPE
        resource = services.resource_create(
            tenant=self.tenant,
            resource_id=resource_id,
            title=fields["title"],
            type=fields.get("type"),
            content=fields.get("content") or "",
            metadata=metadata,
            api_key_id=self.principal.key_id,
        )
        return written(resource, "created", done=201)


class ResourceSearchView(ResourceView):
    info_description = "Search resources by words and meaning together (?q=, ?type=, ?prefix=, ?limit=)"
    access = {"GET": NeedSome("resources", "read")}  # results hold only readable ids

    @extend_schema(parameters=[ResourceSearchQuerySerializer], responses={200: ResourceSearchSerializer})
    def get(self, request: Request) -> Response:
        """Ranked by meaning and words together, score in [0, 1]; only readable resources."""
        params = validated_query(ResourceSearchQuerySerializer, request.query_params)
        readable = self.readable_ids()
        hits = resource_search(
            tenant=self.tenant,
            query=params["q"],
            readable_prefixes=readable,
            limit=params.get("limit") or 10,
            type=params.get("type") or None,
            prefix=params.get("prefix") or None,
        )
        return Response({"results": [hit.as_result() for hit in hits]})


class ResourcePrefixView(ResourceView):
    info_description = "List the resources under a path (notes → notes/hello, notes/todo)"
    access = {"GET": NeedSome("resources", "read", ident=url("prefix", validate=_folder))}

    @extend_schema(parameters=[ResourceListQuerySerializer], responses={200: ResourceListSerializer})
    def get(self, request: Request, prefix: str) -> Response:
        folder = normalise_prefix(prefix)
        if not folder:
            raise ValidationFailed({"prefix": ["Name a path, e.g. /resources/prefix/notes."]})
        readable = self.readable_ids()
        query = page_query(request.query_params, ResourceListQuerySerializer)
        page = selectors.resource_list(
            tenant=self.tenant,
            readable_prefixes=readable,
            cursor=query["cursor"],
            limit=query["limit"],
            type=query.get("type") or None,
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

    @extend_schema(parameters=[ID_PATH], responses={200: ResourceDetailSerializer})
    def get(self, request: Request, resource_id: str) -> Response:
        validate_resource_id(resource_id)
        return Response(resource_detail(selectors.resource_get(tenant=self.tenant, resource_id=resource_id)))

    @extend_schema(
        parameters=[ID_PATH],
        request=WRITE_BODY,
        responses={200: ResourceWrittenSerializer, 202: ResourceIndexingSerializer, **error_responses(422)},
    )
    def put(self, request: Request, resource_id: str) -> Response:
        """Partial update: the fields sent replace, metadata is merged, metadata.updated_at is set.
        202 (with the job) while the resource's chunks are still being embedded, as for POST."""
        validate_resource_id(resource_id)
        fields = _fields(request, creating=False)
        upload: UploadedFile | None = fields.pop("file", None)
        fields.pop("id", None)
        if upload is not None:
            fields["content"], file_info = uploaded_file_text(upload)
            fields["metadata"] = {**(fields.get("metadata") or {}), "file": file_info}
        resource = services.resource_update(
            tenant=self.tenant, resource_id=resource_id, api_key_id=self.principal.key_id, **fields
        )
        return written(resource, "updated", done=200)

    @extend_schema(
        parameters=[ID_PATH],
        request=WRITE_BODY,
        responses={200: ResourceWrittenSerializer, 202: ResourceIndexingSerializer, **error_responses(422)},
    )
    def patch(self, request: Request, resource_id: str) -> Response:
        """The same as PUT: a partial update."""
        return self.put(request, resource_id)

    @extend_schema(parameters=[ID_PATH], responses={200: ResourceDeletedSerializer})
    def delete(self, request: Request, resource_id: str) -> Response:
        validate_resource_id(resource_id)
        services.resource_delete(tenant=self.tenant, resource_id=resource_id)
        return Response({"status": "deleted", "id": resource_id})
