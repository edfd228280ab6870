"""One shared serializer validates as a fresh one does: the same data, the same errors, and no
state carried from one body to the next."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework import serializers

from apps.core.errors import ApplicationError
from apps.core.serializers import validated, validated_statelessly
from apps.memory.serializers import MemoryStoreSerializer


def outcome(validate: Any, data: Any) -> Any:
    try:
        return ("ok", validate(MemoryStoreSerializer, data))
    except serializers.ValidationError as exc:
        return ("invalid", exc.detail)
    except ApplicationError as exc:
        return ("refused", str(exc), exc.code)


@pytest.mark.parametrize(
    "data",
    [
        {"key": "k", "value": {"a": [1, None]}},
        {"value": 1},
        {"key": "", "value": 1},
        {"key": "a\x00b", "value": 1},
        {"key": 7, "value": 1},
        {"key": "k"},
        {"key": "k", "value": None},
        {"key": "k", "value": 1, "extra": True},
        [1],
        "text",
    ],
)
def test_the_same_answer_as_a_fresh_serializer(data: Any) -> None:
    assert outcome(validated_statelessly, data) == outcome(validated, data)


def test_an_invalid_body_leaves_nothing_for_the_next() -> None:
    assert outcome(validated_statelessly, {"value": 1})[0] == "invalid"
    assert validated_statelessly(MemoryStoreSerializer, {"key": "k", "value": 2}) == {"key": "k", "value": 2}
