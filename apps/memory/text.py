"""The text a memory item is embedded as: its key and its value, both readable as words.

`user_preference` + `{"theme": "dark", "language": "en"}` → `user preference: language en, theme dark`.
Keys and field names lose their separators (`_`, `:`, `/`, `.`, `-`) so the model sees words.

The text is canonical: one value gives one text wherever it comes from. A request's value keeps the
client's key order and number spelling, the same value read back from jsonb has jsonb's order
(shorter keys first) and numbers (`1e16` comes back as `10000000000000000`); object fields are
therefore taken in sorted order and integral numbers written as integers. Equal texts have equal
hashes, which is how `reembed` knows an item's vector is still right.
"""

from __future__ import annotations

import re
from decimal import Decimal
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
        for name, inner in sorted(value.items(), key=lambda item: str(item[0])):
            inner_text = _flatten(inner, budget)
            parts.append(f"{words(str(name))} {inner_text}".strip())
        text = ", ".join(part for part in parts if part)
    elif isinstance(value, list):
        text = " ".join(part for part in (_flatten(item, budget) for item in value) if part)
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif value is None:
        text = ""
    elif isinstance(value, float) and value.is_integer():
        # The digits jsonb keeps for this float's JSON spelling (repr), not its binary value.
        text = str(int(Decimal(repr(value))))
    else:
        text = str(value)
    budget[0] -= len(text)
    return text


def embedding_text(key: str, value: Any) -> str:
    body = _flatten(value, [MAX_TEXT_CHARACTERS])
    text = f"{words(key)}: {body}" if body else words(key)
    return text[:MAX_TEXT_CHARACTERS]
