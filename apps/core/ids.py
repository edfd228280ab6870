"""Prefixed, sortable ids: `<prefix>_<ULID>` (time-ordered, 80 random bits)."""

from __future__ import annotations

import re

from ulid import ULID

CLIENT_THREAD_ID = re.compile(r"^thread_[A-Za-z0-9_-]{1,64}$")


def new_id(prefix: str) -> str:
    return f"{prefix}_{ULID()}"


def has_prefix(value: str, prefix: str) -> bool:
    return value.startswith(prefix + "_") and len(value) > len(prefix) + 1
