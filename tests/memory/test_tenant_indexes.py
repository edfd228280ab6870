"""Big tenants get an HNSW index of their own, and their semantic queries go through it.

The fixture table of test_search_plans (charlie 1500 rows, alice 300 in two prefixes, bob 30) with
lowered thresholds stands in for a million-row table.
"""

from __future__ import annotations

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from apps.core import invalidation
from apps.memory import tenant_indexes
from apps.memory.search import _exact, nearest_ids, search_plan, vector_literal
from apps.memory.tasks import sync_memory_tenant_indexes
from apps.memory.tenant_indexes import index_name, indexed_tenants, sync_tenant_indexes
from tests.memory.test_search_plans import big_table, clustered, ids, insert  # noqa: F401

# Transactional: the builds take the CONCURRENTLY path a live server takes, and each test starts
# from an empty table (rolled-back rows would linger as dead entries in the shared index).
pytestmark = pytest.mark.django_db(transaction=True)

LOW_THRESHOLDS = override_settings(
    SLOP_MEMORY_EXACT_SEARCH_MAX_ROWS=100, SLOP_MEMORY_MIN_EF_SEARCH=40, SLOP_MEMORY_TENANT_INDEX_MIN_ROWS=300
)


def tenants_of(hit_ids: list[int]) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT tenant_id FROM memory_memoryitem WHERE id = ANY(%s)", [hit_ids])
        return {row[0] for row in cursor.fetchall()}


@LOW_THRESHOLDS
def test_sync_builds_an_index_for_each_tenant_at_the_threshold_and_no_other(big_table):  # noqa: F811
    alice, bob, charlie = big_table["alice"], big_table["bob"], big_table["charlie"]
    report = sync_tenant_indexes()
    assert set(report.built) == {alice.pk, charlie.pk}
    assert indexed_tenants() >= {alice.pk, charlie.pk}
    assert bob.pk not in indexed_tenants()
    assert sync_tenant_indexes().built == {}  # nothing left to do


@LOW_THRESHOLDS
def test_a_big_tenants_query_goes_through_its_own_index_with_high_recall(big_table):  # noqa: F811
    alice = big_table["alice"]
    assert search_plan(alice.pk, None, 10)[0] == "index"
    sync_tenant_indexes()
    assert search_plan(alice.pk, None, 10) == ("tenant_index", 40)
    recalls = []
    for query in clustered(20):
        hits, plan = nearest_ids(tenant_id=alice.pk, vector=query.tolist(), limit=10, prefixes=None)
        assert plan == "tenant_index"
        assert len(hits) == 10
        assert tenants_of(ids(hits)) == {alice.pk}
        exact = ids(_exact(alice.pk, vector_literal(query.tolist()), None, 10, 0.0))
        recalls.append(len(set(ids(hits)) & set(exact)) / 10)
    assert sum(recalls) / len(recalls) >= 0.95


@LOW_THRESHOLDS
def test_the_planner_uses_the_tenants_index_not_the_shared_one(big_table):  # noqa: F811
    alice = big_table["alice"]
    sync_tenant_indexes()
    with CaptureQueriesContext(connection) as captured:
        nearest_ids(tenant_id=alice.pk, vector=clustered(1)[0].tolist(), limit=10, prefixes=None)
    # The settings and the search go to the server as one message outside a transaction.
    statements = [part for query in captured.captured_queries for part in query["sql"].split("; ")]
    search = next(sql for sql in statements if sql.startswith("WITH hits"))
    settings = next(sql for sql in statements if "hnsw.ef_search" in sql)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(settings)
        cursor.execute(f"EXPLAIN {search}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index_name(alice.pk) in plan, plan
    assert "memory_item_embedding_hnsw" not in plan


@LOW_THRESHOLDS
def test_prefix_filters_and_min_score_still_hold_through_the_tenants_index(big_table):  # noqa: F811
    alice = big_table["alice"]
    sync_tenant_indexes()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM memory_memoryitem WHERE tenant_id = %s AND key LIKE 'a/%%'", [alice.pk]
        )
        allowed = {row[0] for row in cursor.fetchall()}
    for query in clustered(5):
        hits, plan = nearest_ids(tenant_id=alice.pk, vector=query.tolist(), limit=20, prefixes=["a/"])
        assert plan == "tenant_index"
        assert len(hits) == 20
        assert set(ids(hits)) <= allowed
    query = clustered(1)[0].tolist()
    hits, _ = nearest_ids(tenant_id=alice.pk, vector=query, limit=50, prefixes=None, min_score=0.5)
    assert all(distance <= 0.5 + 1e-6 for _, distance in hits)
    assert len(hits) == len(_exact(alice.pk, vector_literal(query), None, 50, 0.5))


@LOW_THRESHOLDS
def test_a_row_written_after_the_build_is_found_through_the_index(big_table):  # noqa: F811
    alice = big_table["alice"]
    sync_tenant_indexes()
    fresh = clustered(1)
    insert(alice.pk, fresh, key_prefix="fresh/")
    hits, plan = nearest_ids(tenant_id=alice.pk, vector=fresh[0].tolist(), limit=5, prefixes=None)
    assert plan == "tenant_index"
    assert hits[0][1] == pytest.approx(0.0, abs=1e-5)


@LOW_THRESHOLDS
def test_a_tenant_that_shrinks_loses_its_index_and_is_searched_exactly(big_table):  # noqa: F811
    alice = big_table["alice"]
    sync_tenant_indexes()
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM memory_memoryitem WHERE tenant_id = %s AND key NOT LIKE 'a/1%%'", [alice.pk]
        )
    report = sync_tenant_indexes()
    assert report.dropped == [alice.pk]
    assert alice.pk not in indexed_tenants()
    hits, plan = nearest_ids(tenant_id=alice.pk, vector=clustered(1)[0].tolist(), limit=10, prefixes=None)
    assert plan == "exact"
    assert len(hits) == 10


@LOW_THRESHOLDS
def test_an_invalid_index_left_by_a_failed_build_is_rebuilt(big_table):  # noqa: F811
    alice = big_table["alice"]
    sync_tenant_indexes()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [index_name(alice.pk)]
        )
    tenant_indexes.MEMORY_INDEXES.forget()  # as a process that hears of the change would
    assert alice.pk not in indexed_tenants()
    report = sync_tenant_indexes()
    assert alice.pk in report.built
    assert alice.pk in indexed_tenants()


@LOW_THRESHOLDS
def test_only_one_sync_runs_at_a_time(big_table):  # noqa: F811
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [tenant_indexes._SYNC_LOCK])
        report = sync_tenant_indexes()
    assert report.skipped
    assert report.built == {}


@LOW_THRESHOLDS
def test_the_command_and_the_beat_task_sync(big_table, capsys):  # noqa: F811
    alice, charlie = big_table["alice"], big_table["charlie"]
    call_command("memory_indexes", "--min-rows", "1000")
    assert f"built the index of tenant {charlie.pk}" in capsys.readouterr().out
    assert sync_memory_tenant_indexes() == {"built": [alice.pk], "dropped": [], "failed": []}
    call_command("memory_indexes")
    assert "up to date" in capsys.readouterr().out


@LOW_THRESHOLDS
def test_an_index_built_by_another_process_serves_once_its_sync_is_heard(big_table):  # noqa: F811
    alice = big_table["alice"]
    query = clustered(1)[0].tolist()
    tenant_indexes.MEMORY_INDEXES.forget()
    assert nearest_ids(tenant_id=alice.pk, vector=query, limit=10, prefixes=None)[1] == "index"
    with connection.cursor() as cursor:  # another process's build, which this one is not told of
        cursor.execute(
            f"CREATE INDEX {index_name(alice.pk)} ON memory_memoryitem"
            f" USING hnsw (embedding vector_cosine_ops) WHERE tenant_id = {alice.pk}"
        )
    # Each query does not read the catalog again: this process's view holds...
    assert nearest_ids(tenant_id=alice.pk, vector=query, limit=10, prefixes=None)[1] == "index"
    # ...until the notification that process's sync sends arrives (as the listener delivers it).
    invalidation._dispatch(tenant_indexes.MEMORY_INDEXES.cache_key, "")
    hits, plan = nearest_ids(tenant_id=alice.pk, vector=query, limit=10, prefixes=None)
    assert plan == "tenant_index" and len(hits) == 10
