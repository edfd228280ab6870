"""One value, one embedding text: the API's write path and `reembed` build the same text.

A client's JSON keeps its own key order and number spelling; the same value read back from jsonb
has jsonb's. The text (and so the vector and the hash `reembed` compares) must not depend on either.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from apps.core import embeddings
from apps.memory import services
from apps.memory.models import MemoryItem
from apps.memory.text import embedding_text

pytestmark = pytest.mark.django_db

VALUE_ONE_ORDER = '{"theme": "dark", "language": "en", "limits": [{"max": 1e16, "min": 2.0}], "beta": true}'
VALUE_OTHER_ORDER = (
    '{"beta": true, "limits": [{"min": 2, "max": 10000000000000000}], "language": "en", "theme": "dark"}'
)


@pytest.fixture
def embed_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every batch of texts sent to be embedded from now on."""
    calls: list[list[str]] = []
    real = embeddings.embed_texts

    def counting(texts: list[str], *, tenant_id: int) -> list[list[float]]:
        calls.append(list(texts))
        return real(texts, tenant_id=tenant_id)

    monkeypatch.setattr(embeddings, "embed_texts", counting)
    return calls


def _store(client: Any, raw_value: str) -> None:
    body = f'{{"key": "user_preference", "value": {raw_value}}}'
    response = client.post("/memory", body, content_type="application/json")
    assert response.status_code in (200, 201), response.content


def test_the_same_value_in_two_key_orders_gets_one_text_and_one_vector(
    alice, charlie, alice_client, charlie_client
) -> None:
    _store(alice_client, VALUE_ONE_ORDER)
    _store(charlie_client, VALUE_OTHER_ORDER)
    one = MemoryItem.objects.for_tenant(alice).get()
    other = MemoryItem.objects.for_tenant(charlie).get()
    assert one.embedding_text == other.embedding_text
    assert one.embedding_text == (
        "user preference: beta yes, language en, limits max 10000000000000000, min 2, theme dark"
    )
    assert one.content_hash == other.content_hash
    assert list(one.embedding) == pytest.approx(list(other.embedding), abs=1e-6)


def test_the_text_of_a_value_is_the_text_of_its_jsonb_copy(alice, alice_client) -> None:
    _store(alice_client, VALUE_ONE_ORDER)
    stored = MemoryItem.objects.for_tenant(alice).get()
    assert list(stored.value) != ["theme", "language", "limits", "beta"]  # jsonb's own order
    assert embedding_text(stored.key, stored.value) == stored.embedding_text


def test_reembed_after_api_writes_embeds_nothing(
    alice, charlie, alice_client, charlie_client, embed_calls: list[list[str]]
) -> None:
    _store(alice_client, VALUE_ONE_ORDER)
    _store(charlie_client, VALUE_OTHER_ORDER)
    embed_calls.clear()
    out = StringIO()
    call_command("reembed", "--all", stdout=out)
    assert "Re-embedded 0 memory items" in out.getvalue()
    assert embed_calls == []


def test_reembed_never_replaces_the_vector_of_a_value_written_meanwhile(
    alice, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.memory_item_store(tenant=alice, key="note", value="grocery list: eggs and flour")
    MemoryItem.objects.for_tenant(alice).update(content_hash="0" * 64)  # stale: reembed takes it
    real = embeddings.embed_texts

    def embed_while_a_client_writes(texts: list[str], *, tenant_id: int) -> list[list[float]]:
        vectors = real(texts, tenant_id=tenant_id)
        monkeypatch.setattr(embeddings, "embed_texts", real)
        services.memory_item_store(tenant=alice, key="note", value="dentist appointment on monday")
        return vectors

    monkeypatch.setattr(embeddings, "embed_texts", embed_while_a_client_writes)
    assert services.memory_items_reembed(tenant=alice, stale_only=True) == 0
    item = MemoryItem.objects.for_tenant(alice).get()
    assert item.value == "dentist appointment on monday"
    assert "dentist" in item.embedding_text
    assert list(item.embedding) == pytest.approx(
        embeddings.embed_text(item.embedding_text, tenant_id=alice.pk), abs=1e-5
    )
