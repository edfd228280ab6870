"""The shapes of /resources (PROTOCOL.md §8): the views validate JSON and multipart bodies with
these classes, and /openapi.json documents the same classes."""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.serializers import ObjectSerializer, PageQuerySerializer, StrictCharField
from apps.resources.ids import MAX_ID_LENGTH, resource_id_problem

MAX_TITLE = 500
MAX_TYPE = 100
MAX_QUERY = 1000
SEARCH_MAX_LIMIT = 100


def _has_nul(value: Any) -> bool:
    """PostgreSQL text and jsonb cannot hold U+0000."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


@extend_schema_field(
    {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_ID_LENGTH,
        "description": "A hierarchical path (notes/hello): no empty, '.' or '..' segments, not 'search', "
        "not starting with 'prefix/'",
    }
)
class ResourceIdField(serializers.Field):
    def to_internal_value(self, data: Any) -> str:
        problem = resource_id_problem(data)
        if problem is not None:
            raise serializers.ValidationError(problem)
        return str(data)

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field({"type": "object", "additionalProperties": True})
class MetadataField(serializers.Field):
    """A JSON object; in a multipart form, its JSON text."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                raise serializers.ValidationError("Must be a JSON object.") from None
        if not isinstance(data, dict):
            raise serializers.ValidationError(f"Must be a JSON object, not {type(data).__name__}.")
        if _has_nul(data):
            raise serializers.ValidationError("May not contain NUL characters.")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class _Text(StrictCharField):
    """Text kept as sent (no trimming); with a maximum, it may not be blank."""

    def __init__(self, *, maximum: int | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("trim_whitespace", False)
        kwargs.setdefault("allow_blank", maximum is None)
        if maximum is not None:
            kwargs["max_length"] = maximum
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not self.allow_blank and not value.strip():
            self.fail("blank")
        return value


class ResourceFieldsSerializer(ObjectSerializer):
    """PUT/PATCH /resources/{id}: every field optional; metadata is merged into the stored one."""

    title = _Text(maximum=MAX_TITLE)
    type = _Text(maximum=MAX_TYPE)
    content = _Text()
    metadata = MetadataField(required=False, allow_null=True)


class ResourceCreateSerializer(ResourceFieldsSerializer):
    id = ResourceIdField()
    title = _Text(maximum=MAX_TITLE, required=True, allow_null=False)


class ResourceUploadSerializer(ResourceFieldsSerializer):
    """A multipart form: `file` (text, Markdown, HTML, PDF; its text becomes `content`, its name the
    default id and title) and the other fields as form fields (`metadata` as JSON text). Without a
    file, the same fields as the JSON body."""

    id = ResourceIdField(required=False, help_text="The file's name when left out")
    file = serializers.FileField(required=False, allow_empty_file=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        upload = attrs.get("file")
        if upload is not None and attrs.get("content") is not None:
            raise serializers.ValidationError({"content": ["Send either a file or content, not both."]})
        if upload is None and self.context.get("creating"):
            missing = {name: ["This field is required."] for name in ("id", "title") if not attrs.get(name)}
            if missing:
                raise serializers.ValidationError(missing)
        return attrs


class ResourceListQuerySerializer(PageQuerySerializer):
    type = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TYPE)
    prefix = serializers.CharField(required=False, allow_blank=True, max_length=MAX_ID_LENGTH)


class ResourceSearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(
        max_length=MAX_QUERY,
        error_messages={"required": "Search query is required.", "blank": "Search query is required."},
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=SEARCH_MAX_LIMIT)
    type = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TYPE)
    prefix = serializers.CharField(required=False, allow_blank=True, max_length=MAX_ID_LENGTH)


class ResourceSummarySerializer(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField()
    type = serializers.CharField(allow_null=True)
    metadata = serializers.DictField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


INDEXING_STATES = ["complete", "pending", "failed"]


class ResourceDetailSerializer(ResourceSummarySerializer):
    content = serializers.CharField(allow_blank=True)
    indexing = serializers.ChoiceField(
        choices=INDEXING_STATES,
        help_text="complete: found by words and meaning; pending: by words until its job ends; "
        "failed: by words only (its job failed)",
    )
    indexing_job = serializers.CharField(
        allow_null=True, help_text="The job embedding its chunks (GET /tools/jobs/{job_id}), if any"
    )


class ResourceListSerializer(serializers.Serializer):
    resources = ResourceSummarySerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


class ResourceWrittenSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["created", "updated"])
    resource = ResourceDetailSerializer()
    indexing = serializers.ChoiceField(choices=INDEXING_STATES)


class ResourceIndexingSerializer(ResourceWrittenSerializer):
    """202: stored and searchable by words; its chunks are embedded by a background job."""

    job_id = serializers.CharField()
    status_url = serializers.CharField(help_text="GET it for the job (/tools/jobs/{job_id})")
    stream_url = serializers.CharField(help_text="The job's status changes as SSE")


class ResourceDeletedSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="deleted")
    id = serializers.CharField()


class ResourceHitSerializer(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField()
    type = serializers.CharField(allow_null=True)
    score = serializers.FloatField(min_value=0, max_value=1)
    snippet = serializers.CharField(allow_blank=True)


class ResourceSearchSerializer(serializers.Serializer):
    results = ResourceHitSerializer(many=True)
