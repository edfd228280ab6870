"""The reembed command and the operators' admin for memory."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from apps.core.embeddings import embed_text, embedding_model_id
from apps.memory.models import MemoryItem

pytestmark = pytest.mark.django_db


def _break_vectors(tenant) -> None:
    """As after a model change: stale model id and a meaningless vector."""
    MemoryItem.objects.for_tenant(tenant).update(
        embedding_model="old-model", content_hash="0" * 64, embedding=[0.0] * 383 + [1.0]
    )


def test_reembed_one_tenant_restores_search(alice, charlie, alice_client, remember):
    remember(alice, {"pet": {"species": "dog", "name": "Biscuit"}, "car": "Toyota Corolla"})
    remember(charlie, {"pet": "cat"})
    _break_vectors(alice)
    _break_vectors(charlie)

    out = StringIO()
    call_command("reembed", "--tenant", alice.slug, stdout=out)

    assert "Re-embedded 2 memory items (tenant alice" in out.getvalue()
    pet = MemoryItem.objects.for_tenant(alice).get(key="pet")
    assert pet.embedding_model == embedding_model_id()
    assert list(pet.embedding) == pytest.approx(
        embed_text(pet.embedding_text, tenant_id=pet.tenant_id), abs=1e-5
    )
    assert MemoryItem.objects.for_tenant(charlie).get().embedding_model == "old-model"
    results = alice_client.post("/memory/query", {"query": "my puppy", "limit": 1}, format="json").json()
    assert results["results"][0]["key"] == "pet"


def test_reembed_all_skips_current_items_unless_forced(alice, charlie, remember):
    remember(alice, {"a": 1, "b": 2})
    remember(charlie, {"c": 3})
    _break_vectors(charlie)
    out = StringIO()
    call_command("reembed", "--all", stdout=out)
    assert "Re-embedded 1 memory items (all tenants)" in out.getvalue()
    out = StringIO()
    call_command("reembed", "--all", "--force", stdout=out)
    assert "Re-embedded 3 memory items" in out.getvalue()


def test_reembed_needs_a_known_tenant_or_all():
    with pytest.raises(CommandError):
        call_command("reembed", "--tenant", "nobody")
    with pytest.raises(CommandError):
        call_command("reembed")


@pytest.fixture
def operator_client() -> Client:
    user = get_user_model().objects.create_superuser("operator", "op@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_admin_lists_one_tenants_memory_and_searches_it(operator_client, alice, charlie, remember):
    remember(alice, {"alice_pref": "dark theme"})
    remember(charlie, {"charlie_pref": "light theme"})
    page = operator_client.get(f"/admin/memory/memoryitem/?tenant__id__exact={alice.pk}").content.decode()
    assert "alice_pref" in page and "charlie_pref" not in page
    found = operator_client.get(
        f"/admin/memory/memoryitem/?tenant__id__exact={alice.pk}&q=theme"
    ).content.decode()
    assert "alice_pref" in found and "charlie_pref" not in found


def test_admin_edit_re_embeds_the_value(operator_client, alice, remember):
    remember(alice, {"note": "grocery list: eggs and flour"})
    item = MemoryItem.objects.for_tenant(alice).get(key="note")
    response = operator_client.post(
        f"/admin/memory/memoryitem/{item.pk}/change/", {"value": '"dentist appointment on monday"'}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    item.refresh_from_db()
    assert item.value == "dentist appointment on monday"
    assert "dentist" in item.embedding_text
    assert list(item.embedding) == pytest.approx(
        embed_text(item.embedding_text, tenant_id=item.tenant_id), abs=1e-5
    )


def test_admin_add_validates_the_value(operator_client, alice):
    response = operator_client.post(
        "/admin/memory/memoryitem/add/", {"tenant": alice.pk, "key": "bad\u0001key", "value": "1"}
    )
    assert response.status_code == 200  # the form again, with the error
    assert MemoryItem.objects.for_tenant(alice).count() == 0
    response = operator_client.post(
        "/admin/memory/memoryitem/add/", {"tenant": alice.pk, "key": "fresh", "value": '{"a": 1}'}
    )
    assert response.status_code == 302
    assert MemoryItem.objects.for_tenant(alice).get(key="fresh").value == {"a": 1}
    again = operator_client.post(
        "/admin/memory/memoryitem/add/", {"tenant": alice.pk, "key": "fresh", "value": "2"}
    )
    assert again.status_code == 200
    assert "already has a memory key" in again.content.decode()
    assert MemoryItem.objects.for_tenant(alice).get(key="fresh").value == {"a": 1}
