"""The raw SQL behind /memory/query reads values for the caller's tenant only.

Ranking and reading values are one statement: the ranked rows are joined to their values on the id
AND the tenant. Here the ranking is made to take every tenant's rows (as a bug in a search plan's
filter would), and the join must still hand out the caller's values only."""

from __future__ import annotations

from typing import Any

import pytest

from apps.memory import search

pytestmark = pytest.mark.django_db


def test_rows_of_another_tenant_ranked_by_a_faulty_filter_never_reach_the_answer(
    alice, charlie, remember, charlie_client, monkeypatch
):
    remember(alice, {"secret/plan": "launch the rocket on friday"})
    remember(charlie, {"charlie_note": "rocket launch friday"})
    real = search._filter_sql
    ranked_everyone: list[bool] = []

    def without_the_tenant(tenant_id: int, prefixes: Any, **kwargs: Any) -> tuple[str, list[Any]]:
        where, params = real(tenant_id, prefixes, **kwargs)
        ranked_everyone.append(True)
        # Every tenant's rows pass: the tenant clause becomes a tautology.
        if kwargs.get("literal_tenant"):
            return where.replace(f"tenant_id = {int(tenant_id)}", "TRUE", 1), params
        return where.replace("tenant_id = %s", "%s::bigint IS NOT NULL", 1), params

    monkeypatch.setattr(search, "_filter_sql", without_the_tenant)
    response = charlie_client.post("/memory/query", {"query": "rocket"}, format="json")

    assert ranked_everyone
    assert response.status_code == 200
    assert [result["key"] for result in response.json()["results"]] == ["charlie_note"]
    assert "launch the rocket on friday" not in response.content.decode()


def test_the_faulty_filter_does_rank_other_tenants_rows(alice, charlie, remember, monkeypatch):
    """The check above can fail: without the join's tenant condition, alice's row is ranked."""
    remember(alice, {"secret/plan": "launch the rocket on friday"})
    remember(charlie, {"charlie_note": "rocket launch friday"})
    where, params = search._filter_sql(charlie.pk, None)
    broken = where.replace("tenant_id = %s", "%s::bigint IS NOT NULL", 1)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key FROM {search.TABLE} WHERE {broken} ORDER BY key", params)  # noqa: S608
        assert [row[0] for row in cursor.fetchall()] == ["charlie_note", "secret/plan"]
