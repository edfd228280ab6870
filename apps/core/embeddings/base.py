"""What every provider shares: the stored width, the error, the provider's shape."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

from apps.core.errors import ApplicationError

# The width of every stored vector (pgvector columns are declared with it). The `openai` provider
# asks its endpoint for this many dimensions and refuses answers of another width.
EMBEDDING_DIMENSIONS: int = 384


def embedding_dimensions() -> int:
    return EMBEDDING_DIMENSIONS


class EmbeddingError(ApplicationError):
    """The embedding provider is not configured or did not answer: 503, with its reason."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="embeddings_unavailable", status=503)


class RuntimeUnavailable(EmbeddingError):
    """The configured runtime cannot run and must not fall back (`onnx-int8`): a web process that
    preloads the model refuses to start with this reason rather than answer 503 for ever."""


class EmbeddingProvider(Protocol):
    model_id: str  # changes when vectors change meaning: part of every cache key

    def embed(self, texts: list[str]) -> list[list[float]]: ...


def normalise(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0.0:
        return [0.0 for _ in vector]
    return [float(x) / norm for x in vector]
