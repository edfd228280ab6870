"""The shapes of /v1 (OpenAI's Chat Completions and Models): requests are validated with these
classes and /openapi.json documents the same ones.

A parameter this door does not act on is refused with a 400 that names it (`param`), never
accepted and ignored: `null` counts as left out, since OpenAI's own clients send that for defaults.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

from apps.core.serializers import (
    AnyJSONField,
    ObjectSerializer,
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
)
from apps.facades.openai.errors import invalid, unsupported

ROLES = ("system", "developer", "user", "assistant", "tool")
FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_MESSAGES = 500
MAX_TOOLS = 128


class FunctionSerializer(ObjectSerializer):
    name = StrictCharField(max_length=64)
    description = StrictCharField(required=False, allow_blank=True, max_length=10_000)
    parameters = serializers.DictField(required=False, help_text="JSON Schema of the arguments")
    strict = StrictBooleanField(required=False, help_text="only false: schemas are not enforced here")

    def validate_name(self, value: str) -> str:
        if not FUNCTION_NAME.match(value):
            raise serializers.ValidationError("Must be 1-64 of A-Z a-z 0-9 _ -.")
        return value


class ToolSerializer(ObjectSerializer):
    type = serializers.ChoiceField(choices=["function"])
    function = FunctionSerializer()


class FunctionCallSerializer(ObjectSerializer):
    name = StrictCharField(max_length=64)
    arguments = StrictCharField(allow_blank=True, trim_whitespace=False, help_text="JSON text")


class ToolCallSerializer(ObjectSerializer):
    id = StrictCharField(max_length=200)
    type = serializers.ChoiceField(choices=["function"])
    function = FunctionCallSerializer()


class MessageSerializer(ObjectSerializer):
    role = serializers.ChoiceField(choices=ROLES)
    content = AnyJSONField(
        required=False,
        allow_null=True,
        help_text='A string, or a list of {"type": "text", "text": ...} parts; null beside tool_calls',
    )
    name = StrictCharField(required=False, allow_null=True, max_length=64)
    tool_calls = ToolCallSerializer(many=True, required=False, allow_null=True)
    tool_call_id = StrictCharField(required=False, allow_null=True, max_length=200)


class StreamOptionsSerializer(ObjectSerializer):
    include_usage = StrictBooleanField(required=False)


class ChatCompletionRequestSerializer(ObjectSerializer):
    """POST /v1/chat/completions: the parameters this door acts on. Any other one is a 400."""

    model = StrictCharField(max_length=200, help_text='A model of GET /v1/models, or "agent:<id>"')
    messages = MessageSerializer(many=True, allow_empty=False, max_length=MAX_MESSAGES)  # type: ignore[call-arg]
    stream = StrictBooleanField(required=False, allow_null=True)
    stream_options = StreamOptionsSerializer(required=False, allow_null=True)
    tools = ToolSerializer(many=True, required=False, allow_null=True, max_length=MAX_TOOLS)  # type: ignore[call-arg]
    tool_choice = AnyJSONField(required=False, allow_null=True, help_text='"auto" or "none"')
    parallel_tool_calls = StrictBooleanField(required=False, allow_null=True, help_text="only true")
    temperature = StrictFloatField(required=False, allow_null=True, min_value=0, max_value=2)
    max_tokens = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=1_000_000)
    max_completion_tokens = StrictIntegerField(
        required=False, allow_null=True, min_value=1, max_value=1_000_000
    )
    n = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=1, help_text="only 1")
    user = StrictCharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        trim_whitespace=False,
        help_text="The team's own end-user id, as X-SLOP-User: usage and the per-user cap are kept for it",
    )


# One instance, built once: validating with it builds no field tree per request (DRF deep-copies
# every nested field on each new serializer, ~2 ms for this one). `run_validation` keeps no state.
_REQUEST = ChatCompletionRequestSerializer()


def validate_request(body: dict[str, Any]) -> dict[str, Any]:
    """The request's validated data, or DRF's ValidationError (a 400 naming the first field)."""
    return dict(_REQUEST.run_validation(body))


_ALLOWED = {
    "": set(_REQUEST.fields),
    "messages": set(MessageSerializer().fields),
    "tools": {"type", "function"},
    "tools.function": set(FunctionSerializer().fields),
    "stream_options": set(StreamOptionsSerializer().fields),
}
_WHY = {
    "stop": "stop sequences are not passed to the models",
    "response_format": "structured output is not enforced here",
}


def _refuse_unknown(data: Any, where: str, prefix: str) -> None:
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        if key not in _ALLOWED[where] and value is not None:
            raise unsupported(f"{prefix}{key}", _WHY.get(key, ""))


def refuse_unknown_parameters(body: dict[str, Any]) -> None:
    """The first parameter (at any depth) that this door would not act on, as a 400."""
    _refuse_unknown(body, "", "")
    _refuse_unknown(body.get("stream_options"), "stream_options", "stream_options.")
    for index, message in enumerate(
        body.get("messages") or [] if isinstance(body.get("messages"), list) else []
    ):
        _refuse_unknown(message, "messages", f"messages[{index}].")
    for index, tool in enumerate(body.get("tools") or [] if isinstance(body.get("tools"), list) else []):
        _refuse_unknown(tool, "tools", f"tools[{index}].")
        if isinstance(tool, dict):
            _refuse_unknown(tool.get("function"), "tools.function", f"tools[{index}].function.")


def check_choices(data: dict[str, Any]) -> None:
    """The values within a known parameter that this door cannot honour."""
    choice = data.get("tool_choice")
    if choice not in (None, "auto", "none"):
        raise unsupported("tool_choice", 'only "auto" and "none" can be honoured by every provider here')
    if data.get("parallel_tool_calls") is False:
        raise unsupported("parallel_tool_calls", "a model may always call several tools at once here")
    for index, tool in enumerate(data.get("tools") or []):
        if tool["function"].get("strict"):
            raise unsupported(f"tools[{index}].function.strict", "schemas are not enforced on arguments")
    if data.get("stream_options") and not data.get("stream"):
        raise invalid("stream_options", "only allowed with stream: true.")
    both = data.get("max_tokens"), data.get("max_completion_tokens")
    if None not in both and both[0] != both[1]:
        raise invalid("max_completion_tokens", "max_tokens says otherwise; send one of them.")


# --- Responses (documentation; the views build the same dicts) ---------------------------------


class UsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()


class ReplyMessageSerializer(serializers.Serializer):
    role = serializers.CharField(help_text="assistant")
    content = serializers.CharField(allow_null=True, allow_blank=True)
    refusal = serializers.CharField(allow_null=True)
    tool_calls = ToolCallSerializer(many=True, required=False)


class ChoiceSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    message = ReplyMessageSerializer()
    finish_reason = serializers.ChoiceField(choices=["stop", "length", "tool_calls"])
    logprobs = serializers.JSONField(allow_null=True)


class ChatCompletionSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="the chat's id (chat_…): GET /chat/{id} shows it")
    object = serializers.CharField(help_text="chat.completion")
    created = serializers.IntegerField()
    model = serializers.CharField()
    choices = ChoiceSerializer(many=True)
    usage = UsageSerializer()


class ModelSerializer(serializers.Serializer):
    id = serializers.CharField(help_text='a model name, or "agent:<id>"')
    object = serializers.CharField(help_text="model")
    created = serializers.IntegerField()
    owned_by = serializers.CharField()


class ModelListSerializer(serializers.Serializer):
    object = serializers.CharField(help_text="list")
    data = ModelSerializer(many=True)  # type: ignore[assignment]  # OpenAI's name, not DRF's .data


class OpenAIErrorDetailSerializer(serializers.Serializer):
    message = serializers.CharField()
    type = serializers.CharField()
    param = serializers.CharField(allow_null=True)
    code = serializers.CharField(allow_null=True)
    required_scope = serializers.CharField(required=False, help_text="scope_violation: the scope needed")


class OpenAIErrorSerializer(serializers.Serializer):
    """Every error under /v1, in OpenAI's shape."""

    error = OpenAIErrorDetailSerializer()
