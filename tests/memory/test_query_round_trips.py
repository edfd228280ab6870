"""`POST /memory/query` talks to the database as little as it can: a small tenant's query is one
statement (count and exact scan together, values joined in); so is a big tenant's with an index of
its own once the process has seen it far above the exact threshold (the settings and the index
scan go in one message); a repeated query is not embedded again."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core import embeddings
from apps.memory.search import _decode, nearest_rows, semantic_search
from apps.memory.tenant_indexes import indexed_tenants, sync_tenant_indexes
from tests.memory.test_search_plans import big_table, clustered  # noqa: F401
from tests.memory.test_tenant_indexes import LOW_THRESHOLDS

pytestmark = pytest.mark.django_db(transaction=True)


def search_statements(captured: CaptureQueriesContext) -> list[str]:
    # Catalog reads cached per process (pgvector's version, which tenants have an index) aside.
    return [
        query["sql"]
        for query in captured.captured_queries
        if "pg_extension" not in query["sql"] and "pg_index" not in query["sql"]
    ]


@LOW_THRESHOLDS
def test_a_small_tenants_query_is_one_statement_with_its_values(big_table):  # noqa: F811
    bob = big_table["bob"]
    nearest_rows(tenant_id=bob.pk, vector=clustered(1)[0].tolist(), limit=10, prefixes=None)  # warm
    with CaptureQueriesContext(connection) as captured:
        rows, plan = nearest_rows(tenant_id=bob.pk, vector=clustered(1)[0].tolist(), limit=10, prefixes=None)
    assert plan == "exact" and len(rows) == 10
    assert len(search_statements(captured)) == 1
    _, key, value, _ = rows[0]
    assert key.startswith("item/") and int(key.removeprefix("item/")) == _decode(value)["n"]
    assert [row[3] for row in rows] == sorted(row[3] for row in rows)


@LOW_THRESHOLDS
def test_a_big_tenants_query_through_its_own_index_is_one_round_trip(big_table):  # noqa: F811
    alice = big_table["alice"]
    sync_tenant_indexes()
    assert alice.pk in indexed_tenants()
    query = clustered(1)[0].tolist()
    nearest_rows(tenant_id=alice.pk, vector=query, limit=10, prefixes=None)  # caches warm
    with CaptureQueriesContext(connection) as captured:
        rows, plan = nearest_rows(tenant_id=alice.pk, vector=query, limit=10, prefixes=None)
    assert plan == "tenant_index" and len(rows) == 10
    statements = search_statements(captured)
    assert len(statements) == 1, statements  # alice has 300 rows: over twice the threshold of 100
    assert statements[0].startswith("SELECT set_config('hnsw.ef_search'") and "; WITH hits" in statements[0]


def test_a_repeated_query_is_embedded_once_per_tenant(alice, remember):
    remember(alice, {"note": "dentist appointment on monday"})
    provider = embeddings.get_provider()
    original = provider.embed
    asked: list[str] = []

    def recording(texts: list[str]) -> list[list[float]]:
        asked.extend(texts)
        return original(texts)

    provider.embed = recording  # type: ignore[method-assign]
    try:
        for _ in range(3):
            results = semantic_search(
                tenant_id=alice.pk, query="when is the dentist", limit=5, prefixes=None, min_score=0.0
            )
            assert results[0]["key"] == "note"
    finally:
        provider.embed = original  # type: ignore[method-assign]
    assert asked == ["when is the dentist"]
