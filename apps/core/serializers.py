"""Shapes shared by every endpoint: strict JSON fields, the §2 error body, pagination parameters.

A view validates its input with a serializer and `@extend_schema` documents the same class, so what
/openapi.json says a body holds is what the view accepts. DRF's stock fields coerce JSON types
(5 → "5", "5" → 5, "yes" → True); a JSON API should refuse them, so bodies use the strict fields
below and only query strings (which are text by nature) use the coercing ones.
"""

from __future__ import annotations

import functools
from typing import Any, cast

from rest_framework import serializers

from apps.core.errors import ApplicationError
from apps.core.pagination import DEFAULT_LIMIT, MAX_LIMIT


class StrictCharField(serializers.CharField):
    """A JSON string; a number or a boolean is refused, not turned into text."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: not "5", not 2.5, not true."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class StrictFloatField(serializers.FloatField):
    """A JSON number: not "0.5", not true."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return float(super().to_internal_value(data))


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only."""

    default_error_messages = {"invalid": "Must be a boolean."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class AnyJSONField(serializers.JSONField):
    """Any JSON value (object, array, string, number, boolean)."""


class ObjectListSerializer(serializers.ListSerializer):
    """A JSON array of objects whose problems are named `field` and `field[i].sub` (DRF would say
    `field.non_field_errors` for a body that is not a list at all)."""

    def to_internal_value(self, data: Any) -> list[Any]:
        if not isinstance(data, list):
            raise serializers.ValidationError([f"Must be a list of objects, not {type(data).__name__}."])
        if not data and not self.allow_empty:
            raise serializers.ValidationError(["At least one item is required."])
        maximum = getattr(self, "max_length", None)  # DRF has it; its stubs do not
        if maximum is not None and len(data) > maximum:
            raise serializers.ValidationError([f"At most {maximum} items."])
        try:
            return list(super().to_internal_value(data))
        except serializers.ValidationError as exc:
            if not isinstance(exc.detail, dict):
                raise
            by_index = cast(dict[Any, Any], exc.detail)  # keyed by item index
            # One entry per item, so the error names read `field[i].sub`.
            raise serializers.ValidationError([by_index.get(i, {}) for i in range(len(data))]) from None


class ObjectSerializer(serializers.Serializer):
    """A JSON object; anything else is one error on the field itself, not on `field.non_field_errors`."""

    class Meta:
        list_serializer_class = ObjectListSerializer

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError([f"Must be a JSON object, not {type(data).__name__}."])
        return super().to_internal_value(data)


def validated(serializer_class: type[serializers.Serializer], data: Any, **context: Any) -> dict[str, Any]:
    """The validated data, or the 400 validation_error listing every field (the exception handler
    flattens DRF's errors into `details`). A body that is not a JSON object is one error too."""
    if not isinstance(data, dict):
        raise ApplicationError(
            f"The request body must be a JSON object, not {type(data).__name__}", code="invalid_request"
        )
    serializer = serializer_class(data=data, context=context)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


@functools.cache
def _instance(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    return serializer_class(context={})


def validated_statelessly(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """validated(serializer_class, data), by one instance of the serializer for every call: for a
    serializer whose fields and validate methods keep nothing on the instance and read no context
    (MemoryStoreSerializer), on the busiest writes. Each new instance builds and deep-copies its
    fields, ~70 µs of a POST /memory (py-spy under bench/serving.py); DRF's is_valid() is
    run_validation() plus what it keeps on the instance, and it raises the same error."""
    if not isinstance(data, dict):
        raise ApplicationError(
            f"The request body must be a JSON object, not {type(data).__name__}", code="invalid_request"
        )
    try:
        return dict(_instance(serializer_class).run_validation(data))
    except serializers.ValidationError as exc:
        raise serializers.ValidationError(exc.detail) from None


class ErrorSerializer(serializers.Serializer):
    """Every error (PROTOCOL.md §2). Some codes add fields: `details` (validation_error),
    `permitted` and `required_scope` (scope_violation), `retry_after` (rate_limited),
    `request_id` (internal_error), `models` (unknown_model), `limit_bytes` (payload_too_large)."""

    error = serializers.CharField(help_text="A human sentence saying what went wrong.")
    code = serializers.CharField(help_text="A stable snake_case identifier.")
    status = serializers.IntegerField(help_text="The HTTP status code, repeated.")
    details = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text='validation_error: {"field": ["message", ...]}',
    )
    permitted = serializers.BooleanField(required=False, help_text="scope_violation: always false.")
    required_scope = serializers.CharField(required=False, help_text="scope_violation: the scope needed.")
    retry_after = serializers.IntegerField(required=False, help_text="rate_limited: seconds to wait.")
    request_id = serializers.CharField(required=False, allow_null=True)


class PageQuerySerializer(serializers.Serializer):
    """`?limit=` and `?cursor=` of every list (newest first)."""

    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_LIMIT,
        help_text=f"1-{MAX_LIMIT}, {DEFAULT_LIMIT} by default.",
    )
    cursor = serializers.CharField(
        required=False, allow_blank=True, help_text="The next_cursor of the previous page (opaque)."
    )


def page_query(
    query_params: Any, serializer_class: type[serializers.Serializer] = PageQuerySerializer
) -> dict[str, Any]:
    """Validated query parameters with `limit` defaulted and an empty cursor as None."""
    data = validated_query(serializer_class, query_params)
    data.setdefault("limit", DEFAULT_LIMIT)
    data["cursor"] = data.get("cursor") or None
    return data


def validated_query(serializer_class: type[serializers.Serializer], query_params: Any) -> dict[str, Any]:
    """Validated query parameters (strings by nature, so the coercing DRF fields apply)."""
    serializer = serializer_class(data=query_params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class InfoEndpointSerializer(serializers.Serializer):
    path = serializers.CharField()
    methods = serializers.ListField(child=serializers.CharField())
    description = serializers.CharField(allow_null=True)


class InfoSerializer(serializers.Serializer):
    """GET /info (PROTOCOL.md §10); `tenant`, `scopes` and the caller's models and tools with a key."""

    name = serializers.CharField()
    version = serializers.CharField()
    description = serializers.CharField()
    endpoints = InfoEndpointSerializer(many=True)
    capabilities = serializers.DictField(help_text="streaming, websockets, sse, ndjson, models, …")
    creator = serializers.DictField()
    links = serializers.DictField()
    tenant = serializers.DictField(required=False)
    scopes = AnyJSONField(required=False)


class HealthSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="ok")


class ReadinessSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ready", "unavailable"])
    checks = serializers.DictField(child=serializers.ChoiceField(choices=["ok", "unavailable"]))


class ServerSentEventSerializer(serializers.Serializer):
    """One event of a text/event-stream response, as a client's SSE parser sees it."""

    id = serializers.CharField(required=False, help_text="Send it back as Last-Event-ID to resume")
    event = serializers.CharField(help_text="message")
    data = serializers.CharField(  # type: ignore[assignment]  # a field, not Serializer.data
        help_text="A JSON event object, or [DONE] after the last one"
    )
    retry = serializers.IntegerField(required=False, help_text="Reconnection delay in milliseconds")
