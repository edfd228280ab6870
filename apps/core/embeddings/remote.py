"""`openai`: any OpenAI-compatible `/embeddings` endpoint (OpenAI, Ollama, vLLM, LM Studio, ...)."""

from __future__ import annotations

from typing import Any

from apps.core.embeddings.base import EMBEDDING_DIMENSIONS, EmbeddingError, normalise


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
                vectors.append(normalise(row.embedding))
        return vectors
