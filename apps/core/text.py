"""The one input rule for text: no NUL character and no lone UTF-16 surrogate, anywhere.

PostgreSQL `text` and `jsonb` cannot hold U+0000, and a lone surrogate (`"\\ud800"` in JSON, which
Python decodes to an unpaired code point) cannot be encoded as UTF-8: either reaches the database
as a 500. The rule is applied where input is parsed (the JSON and multipart parsers, the query
string and URL captures in `PlatformMiddleware`, WebSocket messages), so no endpoint can forget it,
and a request that breaks it is a 400 `validation_error` naming the field before anything is stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from apps.core.errors import ValidationFailed

# json.loads joins a valid surrogate pair into one code point, so any surrogate left is unpaired.
_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")
MAX_REPORTED = 10  # a body full of bad strings gets a readable answer, not thousands of lines


def text_problem(value: str) -> str | None:
    """Why this string may not be stored, or None when it may."""
    found = _FORBIDDEN.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "May not contain a NUL character (U+0000)."
    return f"May not contain a lone UTF-16 surrogate (U+{ord(found.group()):04X})."


def _key_name(key: str) -> str:
    return json.dumps(key)[1:-1]  # the key as it was sent: a\u0000b, \ud800


def json_text_problems(data: Any, root: str = "") -> dict[str, list[str]]:
    """{"messages[0].content": [why], ...} for every key or string value that breaks the rule.

    Iterative: a value nested as deep as the JSON parser allows is walked without recursion.
    """
    problems: dict[str, list[str]] = {}
    stack: list[tuple[str, Any]] = [(root, data)]
    while stack and len(problems) < MAX_REPORTED:
        path, value = stack.pop()
        if isinstance(value, str):
            if (problem := text_problem(value)) is not None:
                problems[path or "body"] = [problem]
        elif isinstance(value, dict):
            children: list[tuple[str, Any]] = []
            for key, item in value.items():
                name = f"{path}.{_key_name(str(key))}" if path else _key_name(str(key))
                if isinstance(key, str) and (problem := text_problem(key)) is not None:
                    problems[name] = [f"Key: {problem}"]
                    continue
                children.append((name, item))
            stack.extend(reversed(children))  # reported in document order
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", item) for index, item in reversed(list(enumerate(value))))
    return problems


def check_json_text(data: Any, root: str = "") -> None:
    """Raise the 400 for a parsed JSON document that breaks the rule."""
    problems = json_text_problems(data, root)
    if problems:
        raise ValidationFailed(problems)


def check_named_text(pairs: Iterable[tuple[str, str]]) -> None:
    """The same rule for flat name → value pairs (query parameters, URL captures, form fields)."""
    problems: dict[str, list[str]] = {}
    for name, value in pairs:
        if (problem := text_problem(name)) is not None:
            problems[_key_name(name)] = [f"Name: {problem}"]
        elif isinstance(value, str) and (problem := text_problem(value)) is not None:
            problems.setdefault(name, []).append(problem)
        if len(problems) >= MAX_REPORTED:
            break
    if problems:
        raise ValidationFailed(problems)
