"""The text a memory item is embedded as: its key and its value, both readable as words.

`user_preference` + `{"theme": "dark", "language": "en"}` → `user preference: theme dark, language en`.
Keys and field names lose their separators (`_`, `:`, `/`, `.`, `-`) so the model sees words.
"""

from __future__ import annotations

import re
from typing import Any

# The model reads 256 word pieces; a longer text only costs tokenizer time.
MAX_TEXT_CHARACTERS = 2000
_SEPARATORS = re.compile(r"[_:/.\-]+")
_SPACES = re.compile(r"\s+")


def words(text: str) -> str:
    return _SPACES.sub(" ", _SEPARATORS.sub(" ", text)).strip()


def _flatten(value: Any, budget: list[int]) -> str:
    if budget[0] <= 0:
        return ""
    if isinstance(value, dict):
        parts = []
        for name, inner in value.items():
            inner_text = _flatten(inner, budget)
            parts.append(f"{words(str(name))} {inner_text}".strip())
        text = ", ".join(part for part in parts if part)
    elif isinstance(value, list):
        text = " ".join(part for part in (_flatten(item, budget) for item in value) if part)
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif value is None:
        text = ""
    else:
        text = str(value)
    budget[0] -= len(text)
    return text


def embedding_text(key: str, value: Any) -> str:
    body = _flatten(value, [MAX_TEXT_CHARACTERS])
    text = f"{words(key)}: {body}" if body else words(key)
    return text[:MAX_TEXT_CHARACTERS]
