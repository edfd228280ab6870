"""Vectors by tenant and content hash: a bounded in-process LRU in front of Django's cache.

The tenant is in every key because a cache shared across tenants is an oracle: a fast answer for a
text tells the caller another team embedded it."""

from __future__ import annotations

import hashlib
import threading
from array import array
from collections import OrderedDict

from django.conf import settings

from apps.core.embeddings.base import EMBEDDING_DIMENSIONS

SHARED_CACHE_SECONDS = 7 * 24 * 3600


def cache_key(tenant_id: int, digest: str) -> str:
    """The shared-cache key of one tenant's vector for one content hash."""
    return f"emb:{int(tenant_id)}:{digest}"


def text_digest(text: str, model_id: str) -> str:
    """sha256 of the model id and the text: equal hashes mean equal vectors."""
    return hashlib.sha256(f"{model_id}\0{text}".encode()).hexdigest()


def pack(vector: list[float]) -> bytes:
    return array("f", vector).tobytes()


def unpack(blob: bytes) -> list[float] | None:
    values = array("f")
    try:
        values.frombytes(blob)
    except (TypeError, ValueError):
        return None
    return list(values) if len(values) == EMBEDDING_DIMENSIONS else None


class LruCache:
    """Vectors by cache key, as float32 arrays (1.5 KB each, not ~12 KB as lists of floats).

    The size is read from settings on first use, so importing this package needs no settings (the
    ONNX export runs it as a plain script)."""

    def __init__(self, size: int | None = None) -> None:
        self._size = size
        self._data: OrderedDict[str, array[float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        if self._size is None:
            self._size = int(getattr(settings, "SLOP_EMBEDDINGS_CACHE_SIZE", 10_000))
        return self._size

    def get(self, key: str) -> list[float] | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                return None
            self._data.move_to_end(key)
        return value.tolist()

    def put(self, key: str, value: list[float]) -> None:
        if self.size <= 0:
            return
        packed = array("f", value)
        with self._lock:
            self._data[key] = packed
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


local_cache = LruCache()
