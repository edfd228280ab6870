"""The shapes of /agents (PROTOCOL.md §11): the views validate bodies with these classes and
/openapi.json documents the same classes.

What a body may say is checked here (types, lengths, bounds, the id's pattern, fields the platform
does not know); what it names — tools, models, other agents of the team — is checked by the
services, which can see the team's data.
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.agents.models import AGENT_ID_PATTERN
from apps.core.serializers import (
    ObjectSerializer,
    PageQuerySerializer,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
)

AGENT_ID = re.compile(AGENT_ID_PATTERN)
AGENT_ID_RULE = "Must be 1-64 of a-z, 0-9, _ and -."
MAX_NAME = 200
MAX_MODEL = 100
MAX_DESCRIPTION = 10_000
MAX_INSTRUCTIONS = 100_000
MAX_PREFIX = 500
MAX_TOOLS = 100
MAX_HANDOFFS = 50
MAX_TOKENS = 1_000_000
TOOL_SELECTIONS = ("auto", "none")


def agent_id_problem(value: Any) -> str | None:
    if not isinstance(value, str) or not AGENT_ID.match(value):
        return AGENT_ID_RULE
    return None


class AgentIdField(StrictCharField):
    default_error_messages = {"invalid": AGENT_ID_RULE}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("help_text", "1-64 of a-z, 0-9, _ and -")
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if agent_id_problem(value):
            self.fail("invalid")
        return value


def _unique(items: list[str], what: str) -> list[str]:
    repeated = sorted({item for item in items if items.count(item) > 1})
    if repeated:
        raise serializers.ValidationError(f"Names each {what} once; repeated: {', '.join(repeated)}.")
    return items


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "enum": list(TOOL_SELECTIONS)},
            {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": 64},
                "maxItems": MAX_TOOLS,
            },
        ],
        "description": '"auto": every tool the caller may execute; "none"; or a list of tool ids '
        "(each a tool of the team; still narrowed by the caller's scope at run time)",
    }
)
class AgentToolsField(serializers.Field):
    default_error_messages = {"invalid": 'Must be "auto", "none" or a list of tool ids.'}

    def to_internal_value(self, data: Any) -> Any:
        if data in TOOL_SELECTIONS:
            return data
        if not isinstance(data, list) or not all(isinstance(item, str) and item for item in data):
            self.fail("invalid")
        if len(data) > MAX_TOOLS:
            raise serializers.ValidationError(f"At most {MAX_TOOLS} tools.")
        return _unique(data, "tool")

    def to_representation(self, value: Any) -> Any:
        return value


class HandoffsField(serializers.ListField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("child", AgentIdField())
        kwargs.setdefault("max_length", MAX_HANDOFFS)
        kwargs.setdefault("help_text", "Ids of the team's agents this one may transfer the conversation to")
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> list[str]:
        if not isinstance(data, list):  # DRF's ListField would take a string as a list of one
            self.fail("not_a_list", input_type=type(data).__name__)
        return _unique(list(super().to_internal_value(data)), "agent")


def _text(maximum: int, **kwargs: Any) -> StrictCharField:
    kwargs.setdefault("required", False)
    kwargs.setdefault("allow_blank", True)
    return StrictCharField(max_length=maximum, trim_whitespace=False, **kwargs)


class AgentFieldsSerializer(ObjectSerializer):
    """PUT /agents/{id}: a partial update; the fields sent replace the stored ones. `id`, when
    sent, must be the agent's own (an agent is not renamed)."""

    id = AgentIdField(required=False)
    name = _text(MAX_NAME, help_text="A display name (the id when left out)")
    description = _text(MAX_DESCRIPTION, help_text="What the agent is good at: routing by content reads it")
    model = _text(
        MAX_MODEL, allow_null=True, help_text="One of the team's models; null or empty: the default"
    )
    instructions = _text(MAX_INSTRUCTIONS, help_text="Its system prompt")
    tools = AgentToolsField(required=False)
    memory_prefix = _text(
        MAX_PREFIX, allow_null=True, help_text="Its part of the team's memory (a key prefix)"
    )
    resources_prefix = _text(
        MAX_PREFIX, allow_null=True, help_text="Its part of the team's resources (an id prefix)"
    )
    handoffs = HandoffsField(required=False)
    temperature = StrictFloatField(required=False, allow_null=True, min_value=0, max_value=2)
    max_tokens = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_TOKENS)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(str(name) for name in data if name not in self.fields)
            if unknown:
                # PROTOCOL: a field the platform does not act on is refused, not ignored.
                raise serializers.ValidationError(
                    {name: ["Unknown field: an agent has no such setting."] for name in unknown}
                )
        values = dict(super().to_internal_value(data))
        for name in ("model", "memory_prefix", "resources_prefix"):
            if name in values and values[name] is None:
                values[name] = ""  # null and "" both mean "none" (the default model, no prefix)
        return values


class AgentCreateSerializer(AgentFieldsSerializer):
    """POST /agents: `id` is required, everything else has a default (tools: "auto")."""

    id = AgentIdField()


class AgentSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    description = serializers.CharField(allow_blank=True)
    model = serializers.CharField(allow_null=True, help_text="null: the team's default model")
    instructions = serializers.CharField(allow_blank=True)
    tools = AgentToolsField()
    memory_prefix = serializers.CharField(allow_blank=True)
    resources_prefix = serializers.CharField(allow_blank=True)
    handoffs = serializers.ListField(child=serializers.CharField())
    temperature = serializers.FloatField(allow_null=True)
    max_tokens = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class AgentListSerializer(serializers.Serializer):
    agents = AgentSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


class AgentWrittenSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["created", "updated"])
    agent = AgentSerializer()


class AgentDeletedSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="deleted")
    id = serializers.CharField()


AgentListQuerySerializer = PageQuerySerializer
