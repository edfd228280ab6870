"""The shapes of /chat (PROTOCOL.md §4, §5): requests are validated with these classes (HTTP and
WebSocket alike, through `exchange_prepare`), and /openapi.json documents the same classes."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.ids import CLIENT_THREAD_ID
from apps.core.serializers import (
    AnyJSONField,
    ObjectSerializer,
    PageQuerySerializer,
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
)

ROLES = ("user", "system", "assistant")
MAX_MESSAGES = 500
THREAD_ID_RULE = "Must be thread_ followed by 1-64 of A-Z a-z 0-9 _ -."


class ChatMessageInputSerializer(ObjectSerializer):
    role = serializers.ChoiceField(
        choices=ROLES, required=False, allow_null=True, allow_blank=True, help_text="user when left out"
    )
    content = StrictCharField(allow_blank=True, trim_whitespace=False)

    def validate_content(self, value: str) -> str:
        limit = settings.SLOP_CHAT_MAX_CONTENT_CHARS
        if len(value) > limit:
            raise serializers.ValidationError(f"At most {limit} characters (got {len(value)}).")
        return value


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "enum": ["auto", "none"]},
            {"type": "array", "items": {"type": "string"}},
        ],
        "description": '"auto": every tool the scope may execute; "none"; or a list of tool ids',
    }
)
class ToolSelectionField(serializers.Field):
    default_error_messages = {"invalid": 'Must be "auto", "none" or a list of tool ids.'}

    def to_internal_value(self, data: Any) -> Any:
        if data in ("auto", "none"):
            return data
        if isinstance(data, list) and all(isinstance(item, str) for item in data):
            return data
        self.fail("invalid")

    def to_representation(self, value: Any) -> Any:
        return value


class ThreadIdField(StrictCharField):
    default_error_messages = {"invalid": THREAD_ID_RULE}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", "thread_ + 1-64 of A-Z a-z 0-9 _ - (created on first use)")
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not CLIENT_THREAD_ID.match(value):
            self.fail("invalid")
        return value


AGENT_ID_RULE = "Must be an agent id: 1-64 of a-z 0-9 _ -."
PATTERNS = ("route", "sequential", "parallel", "branching")
CONDITIONS = ("contains", "regex", "label")


class AgentIdField(StrictCharField):
    default_error_messages = {"invalid": AGENT_ID_RULE}

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not re.fullmatch(r"[a-z0-9_-]{1,64}", value):
            self.fail("invalid")
        return value


class ClosedObjectSerializer(ObjectSerializer):
    """An object whose every key must be one of its fields: a key the platform would not act on
    is refused, not ignored (the agent fields are new; a typo must not silently change a run)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [f"Unknown field; expected one of {', '.join(self.fields)}."] for name in unknown}
                )
        return super().to_internal_value(data)


class BranchConditionSerializer(ClosedObjectSerializer):
    contains = StrictCharField(required=False, min_length=1, max_length=1000, trim_whitespace=False)
    regex = StrictCharField(required=False, min_length=1, max_length=500, trim_whitespace=False)

    def get_fields(self) -> dict[str, Any]:
        # `label` is also an attribute of every DRF field, so it is added here, not declared.
        fields = dict(super().get_fields())
        fields["label"] = StrictCharField(required=False, min_length=1, max_length=200)
        return fields

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        if len(value) != 1:
            # A list, so the error is the field's own (`branches[0].when`), not non_field_errors.
            raise serializers.ValidationError([f"Exactly one of {', '.join(CONDITIONS)}."])
        return value


class BranchSerializer(ClosedObjectSerializer):
    when = BranchConditionSerializer(
        required=False, allow_null=True, help_text="Left out: the default branch"
    )
    agent = AgentIdField(max_length=64)


class ChatRequestSerializer(ObjectSerializer):
    """POST /chat, POST /chat/stream and each WebSocket message."""

    messages = ChatMessageInputSerializer(  # type: ignore[call-arg]  # DRF takes max_length
        many=True, allow_empty=False, max_length=MAX_MESSAGES
    )
    model = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=200)
    thread_id = ThreadIdField(required=False, allow_null=True, max_length=71)
    stream = StrictBooleanField(required=False, help_text="true: answer as SSE (POST /chat)")
    agent = AgentIdField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=64,
        help_text='That agent answers (the first step of branching, the router of route); null or ""'
        " releases a thread held by an agent",
    )
    pattern = serializers.ChoiceField(choices=PATTERNS, required=False, allow_null=True)
    agents = serializers.ListField(
        child=AgentIdField(max_length=64),
        required=False,
        allow_null=True,
        max_length=64,
        help_text="route: the candidates; sequential: the steps in order; parallel: who runs at once",
    )
    aggregator = AgentIdField(
        required=False, allow_null=True, max_length=64, help_text="parallel: merges the answers"
    )
    branches = BranchSerializer(  # type: ignore[call-arg]  # DRF takes max_length
        many=True,
        required=False,
        allow_null=True,
        max_length=32,
        help_text='branching: [{"when": {"contains"|"regex"|"label": …}, "agent": id}, …,'
        ' {"agent": default}]',
    )
    temperature = StrictFloatField(required=False, allow_null=True, min_value=0, max_value=2)
    max_tokens = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=1_000_000)
    tools = ToolSelectionField(required=False, allow_null=True)


class ChatListQuerySerializer(PageQuerySerializer):
    type = serializers.ChoiceField(choices=["chats", "threads"], required=False)


class ChatStreamQuerySerializer(serializers.Serializer):
    """GET /chat/stream, for EventSource (which cannot send a body or headers)."""

    content = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    thread_id = serializers.CharField(required=False, allow_blank=True)
    model = serializers.CharField(required=False, allow_blank=True)
    agent = serializers.CharField(required=False, allow_blank=True)
    last_event_id = serializers.CharField(required=False, help_text="<run id>:<n>, as Last-Event-ID")


class UsageSerializer(serializers.Serializer):
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()


class ToolCallSerializer(serializers.Serializer):
    id = serializers.CharField()
    tool = serializers.CharField()
    arguments = AnyJSONField()
    result = AnyJSONField(required=False)
    error = AnyJSONField(required=False)


class ReplyMessageSerializer(serializers.Serializer):
    id = serializers.CharField()
    role = serializers.CharField(help_text="assistant")
    content = serializers.CharField()
    status = serializers.ChoiceField(choices=["complete", "incomplete"])
    agent = serializers.CharField(required=False)


class AgentTurnSerializer(serializers.Serializer):
    agent = serializers.CharField()
    step = serializers.IntegerField()
    content = serializers.CharField(allow_blank=True)
    tool_calls = serializers.ListField(child=serializers.DictField())
    usage = UsageSerializer()
    model = serializers.CharField(required=False)
    status = serializers.ChoiceField(choices=["complete", "incomplete"], required=False)


class ChatReplySerializer(serializers.Serializer):
    id = serializers.CharField(help_text="chat_…")
    thread_id = serializers.CharField(allow_null=True)
    message = ReplyMessageSerializer()
    model = serializers.CharField()
    usage = UsageSerializer()
    tool_calls = serializers.ListField(child=serializers.DictField())
    agents = AgentTurnSerializer(many=True, required=False, help_text="With agents: every agent's turn")
    error = serializers.DictField(required=False, help_text="A run stopped at a limit: the error")


class ChatSummarySerializer(serializers.Serializer):
    id = serializers.CharField()
    snippet = serializers.CharField(allow_blank=True)
    model = serializers.CharField()
    created_at = serializers.DateTimeField()


class ThreadSummarySerializer(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField(allow_blank=True)
    last_message = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    agent = serializers.CharField(required=False, help_text="The agent holding the thread, if any")


class ChatListSerializer(serializers.Serializer):
    """`chats` without ?type, `threads` with ?type=threads."""

    chats = ChatSummarySerializer(many=True, required=False)
    threads = ThreadSummarySerializer(many=True, required=False)
    next_cursor = serializers.CharField(allow_null=True)


class StoredMessageSerializer(serializers.Serializer):
    id = serializers.CharField()
    role = serializers.ChoiceField(choices=ROLES)
    content = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    status = serializers.CharField(required=False)
    model = serializers.CharField(required=False, allow_blank=True)
    usage = UsageSerializer(required=False)
    tool_calls = serializers.ListField(child=serializers.DictField(), required=False)
    agent = serializers.CharField(required=False)
    step = serializers.IntegerField(required=False)


class ChatDetailSerializer(serializers.Serializer):
    """A chat (`id`) or a thread (`thread_id`, `title`, `updated_at`, `next_cursor`)."""

    id = serializers.CharField(required=False)
    thread_id = serializers.CharField(allow_null=True)
    title = serializers.CharField(required=False, allow_blank=True)
    messages = StoredMessageSerializer(many=True)
    model = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField(required=False)
    next_cursor = serializers.CharField(required=False, allow_null=True)
    agent = serializers.CharField(required=False, help_text="A thread: the agent holding it")


class TicketSerializer(serializers.Serializer):
    ticket = serializers.CharField(help_text="tkt_…; put it in ?ticket= of /chat/stream or /chat/ws")
    expires_in = serializers.IntegerField(help_text="seconds")


class ChatEventSerializer(serializers.Serializer):
    """One streamed event (PROTOCOL.md §5): the `data` of an SSE event, or one NDJSON line."""

    type = serializers.ChoiceField(
        choices=["thinking", "content", "tool_start", "tool_result", "agent", "error", "done"]
    )
    content = serializers.CharField(allow_blank=True, help_text='The next piece of text ("" if none)')
    tool = serializers.CharField(required=False)
    call_id = serializers.CharField(required=False)
    arguments = AnyJSONField(required=False)
    result = AnyJSONField(required=False)
    error = AnyJSONField(required=False)
    code = serializers.CharField(required=False)
    agent = serializers.CharField(required=False)
    step = serializers.IntegerField(required=False)
    pattern = serializers.CharField(required=False)
    reason = serializers.CharField(required=False)
    score = serializers.FloatField(required=False)
    agents = AgentTurnSerializer(many=True, required=False)
    status = serializers.IntegerField(required=False)
    id = serializers.CharField(required=False, help_text="done: the chat id")
    thread_id = serializers.CharField(required=False, allow_null=True)
    message = ReplyMessageSerializer(required=False, help_text="done: the whole reply")
    usage = UsageSerializer(required=False)
    model = serializers.CharField(required=False)
    tool_calls = serializers.ListField(child=serializers.DictField(), required=False)
