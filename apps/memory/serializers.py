"""The shapes of /memory (PROTOCOL.md §7): the views validate with these, /openapi.json shows them."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.errors import ValidationFailed
from apps.core.serializers import (
    AnyJSONField,
    ObjectSerializer,
    PageQuerySerializer,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
)
from apps.memory import selectors, services
from apps.memory.models import KEY_MAX_LENGTH

QUERY_MAX_LIMIT = selectors.MAX_QUERY_LIMIT
QUERY_MAX_CHARACTERS = 10_000


class MemoryKeyField(StrictCharField):
    """A key (or, with `prefix=True`, a key prefix that may be empty): the rule of services.validate_key."""

    def __init__(self, *, prefix: bool = False, **kwargs: Any) -> None:
        self.prefix = prefix
        kwargs.setdefault("max_length", KEY_MAX_LENGTH)
        kwargs.setdefault("trim_whitespace", False)
        kwargs.setdefault("help_text", f"1-{KEY_MAX_LENGTH} characters, no control characters")
        if prefix:
            kwargs.setdefault("allow_blank", True)
            kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if self.prefix and data in (None, ""):
            return None
        try:
            return services.validate_key(data, "value")
        except ValidationFailed as exc:
            raise serializers.ValidationError(exc.extra["details"]["value"]) from None


class MemoryStoreSerializer(ObjectSerializer):
    key = MemoryKeyField()
    value = AnyJSONField(help_text="Any JSON value: object, array, string, number, boolean")


class MemoryUpdateSerializer(ObjectSerializer):
    value = AnyJSONField(help_text="Any JSON value: object, array, string, number, boolean")


class MemoryQueryFilterSerializer(ObjectSerializer):
    key_prefix = MemoryKeyField(prefix=True, required=False)


class MemoryQuerySerializer(ObjectSerializer):
    query = StrictCharField(max_length=QUERY_MAX_CHARACTERS, trim_whitespace=False)
    limit = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=QUERY_MAX_LIMIT)
    min_score = StrictFloatField(required=False, allow_null=True, min_value=0, max_value=1)
    filter = MemoryQueryFilterSerializer(required=False, allow_null=True)

    def validate_query(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("Required: a non-empty string.")
        return value


class MemoryListQuerySerializer(PageQuerySerializer):
    prefix = MemoryKeyField(prefix=True, required=False)


class StoredStatusSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="stored")


class UpdatedStatusSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="updated")
    previous_value = AnyJSONField()


class DeletedStatusSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="deleted")


class MemoryKeySerializer(serializers.Serializer):
    key = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class MemoryListSerializer(serializers.Serializer):
    keys = MemoryKeySerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


class MemoryItemSerializer(MemoryKeySerializer):
    value = AnyJSONField()


class MemoryQueryResultSerializer(serializers.Serializer):
    key = serializers.CharField()
    value = AnyJSONField()
    score = serializers.FloatField(min_value=0, max_value=1)


class MemoryQueryResultsSerializer(serializers.Serializer):
    results = MemoryQueryResultSerializer(many=True)
