"""The raw-SQL fetch behind /memory/query reads values for the caller's tenant only.

The ranking step returns row ids; the fetch that turns them into keys and values must not trust
them. Here the ranking is made to hand over the ids of another tenant's rows (as a bug in a search
plan, or a stale id reused by another tenant, would)."""

from __future__ import annotations

import pytest

from apps.memory import search
from apps.memory.models import MemoryItem

pytestmark = pytest.mark.django_db


def test_ids_of_another_tenants_rows_never_reach_the_answer(
    alice, charlie, remember, charlie_client, monkeypatch
):
    remember(alice, {"secret/plan": "launch the rocket on friday"})
    remember(charlie, {"charlie_note": "rocket launch friday"})
    everyone = [(row.pk, 0.1) for row in MemoryItem.objects.unscoped().order_by("key")]

    monkeypatch.setattr(search, "nearest_ids", lambda **kwargs: (everyone, "exact"))
    response = charlie_client.post("/memory/query", {"query": "rocket"}, format="json")

    assert response.status_code == 200
    assert [result["key"] for result in response.json()["results"]] == ["charlie_note"]
    assert "launch the rocket on friday" not in response.content.decode()
