"""The shapes of /tools (PROTOCOL.md §6): the views and `tool_put` validate with these classes,
and /openapi.json documents the same classes."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from apps.core.http import outbound_url_problem
from apps.core.serializers import (
    AnyJSONField,
    ObjectSerializer,
    PageQuerySerializer,
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
)
from apps.tools.models import ToolJob
from apps.tools.schemas import SchemaProblem, check_schema, schema_from_parameters

MIN_SECRET_LENGTH = 16
MAX_WAIT_SECONDS = 30.0


class ToolCallQuerySerializer(serializers.Serializer):
    # "async" is a Python keyword: the field is declared below under its query-string name.
    wait = serializers.FloatField(
        required=False,
        min_value=0,
        max_value=MAX_WAIT_SECONDS,
        help_text="Seconds to wait for a long-running job before answering 202",
        error_messages={"invalid": f"Must be a number of seconds between 0 and {MAX_WAIT_SECONDS:g}."},
    )


ToolCallQuerySerializer._declared_fields["async"] = serializers.BooleanField(
    required=False, help_text="true: always run as a job (202 with its status_url)"
)


class ToolCallEnvelopeSerializer(ObjectSerializer):
    """The alternative body form: the parameters wrapped, with the tool id and a call id."""

    tool_id = StrictCharField(required=False, allow_null=True)
    parameters = serializers.DictField()
    call_id = StrictCharField(required=False, allow_null=True, max_length=200)


class ToolJobListQuerySerializer(PageQuerySerializer):
    status = serializers.ChoiceField(choices=ToolJob.Status.choices, required=False, allow_blank=True)
    tool = serializers.CharField(required=False, allow_blank=True, max_length=64)


class WebhookToolSerializer(ObjectSerializer):
    """PUT /tools/{id} for a webhook tool (`webhook_url` is accepted for `url`). For a built-in tool,
    only enabled, safe and long_running may be set."""

    description = StrictCharField(required=False, allow_blank=True, trim_whitespace=False, max_length=2000)
    schema = AnyJSONField(
        required=False, allow_null=True, help_text="The parameters' JSON Schema (an object schema)"
    )
    parameters = AnyJSONField(
        required=False, allow_null=True, help_text="Or the seed's map: name → JSON-Schema property"
    )
    example = AnyJSONField(required=False, allow_null=True)
    url = StrictCharField(help_text="http(s) URL the platform POSTs calls to", max_length=2000)
    signing_secret = StrictCharField(
        required=False, allow_null=True, min_length=MIN_SECRET_LENGTH, max_length=200, write_only=True
    )
    rotate_secret = StrictBooleanField(required=False, default=False)
    safe = StrictBooleanField(required=False, default=False)
    long_running = StrictBooleanField(required=False, default=False)
    enabled = StrictBooleanField(required=False, default=True)
    timeout_seconds = StrictFloatField(required=False, allow_null=True, min_value=0.1)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict) and "url" not in data and "webhook_url" in data:
            data = {**data, "url": data["webhook_url"]}
        return super().to_internal_value(data)

    def validate_url(self, value: str) -> str:
        problem = outbound_url_problem(value)
        if problem:
            raise serializers.ValidationError(problem[0].upper() + problem[1:] + ".")
        return value

    def validate_timeout_seconds(self, value: float | None) -> float | None:
        if value is not None and value > settings.TOOLS_MAX_TIMEOUT:
            maximum = settings.TOOLS_MAX_TIMEOUT
            raise serializers.ValidationError(f"Must be a number between 0.1 and {maximum:g}.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        field = "schema" if "schema" in attrs else "parameters"
        try:
            if "schema" in attrs:
                attrs["schema"] = check_schema(attrs["schema"])
            elif "parameters" in attrs:
                attrs["schema"] = check_schema(schema_from_parameters(attrs["parameters"]))
            else:
                attrs["schema"] = {"type": "object", "properties": {}}
        except SchemaProblem as exc:
            raise serializers.ValidationError({field: [str(exc)]}) from None
        return attrs


class ToolSerializer(serializers.Serializer):
    id = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    parameters = serializers.DictField(help_text="name → JSON-Schema property")
    safe = serializers.BooleanField()
    long_running = serializers.BooleanField()


class ToolDetailSerializer(ToolSerializer):
    schema = serializers.DictField()
    example = AnyJSONField(allow_null=True)
    kind = serializers.ChoiceField(choices=["builtin", "webhook"])
    enabled = serializers.BooleanField()
    timeout_seconds = serializers.FloatField(allow_null=True)
    created_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)
    url = serializers.CharField(required=False, help_text="webhook tools, to callers who may write them")
    signing_secret = serializers.CharField(required=False, help_text="shown once, when it is made")


class ToolListSerializer(serializers.Serializer):
    tools = ToolSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


class ToolResultSerializer(serializers.Serializer):
    result = AnyJSONField()


class ToolJobSerializer(serializers.Serializer):
    job_id = serializers.CharField()
    tool = serializers.CharField()
    status = serializers.ChoiceField(choices=ToolJob.Status.choices)
    result = AnyJSONField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    error_code = serializers.CharField(allow_null=True)
    call_id = serializers.CharField(allow_null=True)
    attempts = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    status_url = serializers.CharField()
    stream_url = serializers.CharField()


class ToolJobAcceptedSerializer(serializers.Serializer):
    """202: the call runs as a job."""

    job_id = serializers.CharField()
    status = serializers.ChoiceField(choices=ToolJob.Status.choices)
    status_url = serializers.CharField()


class ToolJobListSerializer(serializers.Serializer):
    jobs = ToolJobSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


class ToolDeletedSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="deleted")
    id = serializers.CharField()
