"""Big resource tenants get an HNSW index of their own, and their searches by meaning go through it.

Lowered thresholds stand in for a large table: alice has 400 chunks (indexed), charlie 60 (exact),
with clustered synthetic vectors written straight to the rows (no model needed for the ranking;
the search's query vector is given as a literal).
"""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from apps.resources import search
from apps.resources.models import Resource, ResourceChunk
from apps.resources.tasks import sync_resource_tenant_indexes
from apps.resources.tenant_indexes import CHUNK_INDEXES, sync_chunk_indexes

# Transactional: the builds take the CONCURRENTLY path a live server takes.
pytestmark = pytest.mark.django_db(transaction=True)

LOW_THRESHOLDS = override_settings(
    RESOURCES_TENANT_INDEX_MIN_CHUNKS=300,
    RESOURCES_TENANT_INDEX_CACHE_SECONDS=0,
)
CENTRES = np.random.default_rng(1).normal(size=(8, 384)).astype(np.float32)


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def clustered(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = CENTRES[rng.integers(0, len(CENTRES), size=count)]
    return unit(base + rng.normal(0, 0.35, size=base.shape).astype(np.float32))


def fill(tenant, resources: int, chunks_each: int, *, seed: int, folder: str = "docs") -> None:
    vectors = iter(clustered(resources * chunks_each, seed))
    rows = Resource.objects.bulk_create(
        Resource(tenant=tenant, path=f"{folder}/{index % 2}/{index}", title=f"Doc {index}", content="x")
        for index in range(resources)
    )
    ResourceChunk.objects.bulk_create(
        ResourceChunk(
            tenant=tenant,
            resource=row,
            position=position,
            title=row.title,
            text=f"passage {position}",
            embedding=next(vectors).tolist(),
        )
        for row in rows
        for position in range(chunks_each)
    )


@pytest.fixture
def tenants(make_tenant):
    alice, charlie = make_tenant("Alice Team"), make_tenant("Charlie Team")
    fill(alice, 100, 4, seed=2)
    fill(charlie, 20, 3, seed=3, folder="theirs")
    return alice, charlie


def meaning(tenant, vector: np.ndarray, limit: int = 10, **filters) -> tuple[list[search.Ranked], str | None]:
    options = {"readable_prefixes": None, "type": None, "prefix": None, **filters}
    _, ranked, plan = search._rank(
        words=None,
        vector=search._vector_literal(vector.tolist()),
        filters=search.Filters(tenant_id=tenant.pk, **options),
        limit=limit,
    )
    return ranked or [], plan


def exact(tenant, vector: np.ndarray, limit: int = 10, **filters) -> list[int]:
    options = {"readable_prefixes": None, "type": None, "prefix": None, **filters}
    statement = search._exact_statement(
        vector=search._vector_literal(vector.tolist()),
        filters=search.Filters(tenant_id=tenant.pk, **options),
        limit=limit,
    )
    (rows,) = search.run_statements([statement])
    return [row[0] for row in rows]


def owners(ranked: list[search.Ranked]) -> set[int]:
    return set(
        Resource.objects.unscoped()
        .filter(pk__in=[hit.resource_pk for hit in ranked])
        .values_list("tenant_id", flat=True)
    )


@LOW_THRESHOLDS
def test_sync_builds_an_index_for_the_big_tenant_only(tenants):
    alice, charlie = tenants
    assert search.meaning_plan(alice.pk) == "exact"  # until its own index is built
    report = sync_chunk_indexes()
    assert set(report.built) == {alice.pk}
    assert CHUNK_INDEXES.indexed_tenants() == {alice.pk}
    assert search.meaning_plan(alice.pk) == "tenant_index"
    assert search.meaning_plan(charlie.pk) == "exact"
    assert sync_chunk_indexes().built == {}


@LOW_THRESHOLDS
def test_the_planner_uses_the_tenants_own_index(tenants):
    alice, _ = tenants
    sync_chunk_indexes()
    query = clustered(1, 9)[0]
    with CaptureQueriesContext(connection) as captured:
        meaning(alice, query)
    (batch,) = [entry["sql"] for entry in captured.captured_queries if "hnsw.ef_search" in entry["sql"]]
    settings_sql, select = batch.split(";\n", 1)
    with connection.cursor() as cursor:
        cursor.execute(f"{settings_sql};\nEXPLAIN {select}")
        cursor.nextset()
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert CHUNK_INDEXES.index_name(alice.pk) in plan, plan
    assert "chunk_embedding_hnsw" not in plan
    assert f"tenant_id = {alice.pk}" in select  # a literal: the planner matches the partial index by it


@LOW_THRESHOLDS
def test_results_through_the_tenants_index_are_its_own_and_close_to_exact(tenants):
    alice, charlie = tenants
    sync_chunk_indexes()
    recalls = []
    for query in clustered(10, 11):
        ranked, plan = meaning(alice, query)
        assert plan == "tenant_index"
        assert len(ranked) == 10
        assert owners(ranked) == {alice.pk}
        recalls.append(len({hit.resource_pk for hit in ranked} & set(exact(alice, query))) / 10)
    assert sum(recalls) / len(recalls) >= 0.9
    # The small tenant beside it: exact, complete, its own.
    ranked, plan = meaning(charlie, clustered(1, 12)[0], limit=30)
    assert plan == "exact"
    assert len(ranked) == 20
    assert owners(ranked) == {charlie.pk}


@LOW_THRESHOLDS
def test_filters_still_fill_the_page_through_the_tenants_index(tenants):
    alice, _ = tenants
    sync_chunk_indexes()
    query = clustered(1, 13)[0]
    ranked, _ = meaning(alice, query, limit=30, readable_prefixes=["docs/1/"])
    assert len(ranked) == 30
    paths = Resource.objects.for_tenant(alice).filter(pk__in=[hit.resource_pk for hit in ranked])
    assert all(path.startswith("docs/1/") for path in paths.values_list("path", flat=True))
    # Fewer matching resources than asked for: every one of them, however far (the exact scan).
    ranked, plan = meaning(alice, query, limit=30, prefix="docs/0/1")
    expected = Resource.objects.for_tenant(alice).filter(path__startswith="docs/0/1").count()
    assert len(ranked) == expected
    assert plan == "exact"


@LOW_THRESHOLDS
def test_a_chunk_written_after_the_build_is_found_through_the_index(tenants, alice_client):
    alice, _ = tenants
    sync_chunk_indexes()
    fresh = clustered(1, 14)[0]
    resource = Resource.objects.create(tenant=alice, path="fresh", title="Fresh", content="x")
    ResourceChunk.objects.create(
        tenant=alice, resource=resource, position=0, title="Fresh", text="x", embedding=fresh.tolist()
    )
    ranked, plan = meaning(alice, fresh, limit=5)
    assert plan == "tenant_index"
    assert ranked[0].resource_pk == resource.pk
    assert ranked[0].value == pytest.approx(0.0, abs=1e-5)


@LOW_THRESHOLDS
def test_a_tenant_that_shrinks_loses_its_index(tenants):
    alice, _ = tenants
    sync_chunk_indexes()
    Resource.objects.for_tenant(alice).filter(path__startswith="docs/1/").delete()
    ResourceChunk.objects.for_tenant(alice).filter(position__gte=1).delete()
    report = sync_chunk_indexes()
    assert report.dropped == [alice.pk]
    assert search.meaning_plan(alice.pk) == "exact"
    assert CHUNK_INDEXES.indexed_tenants() == frozenset()


@LOW_THRESHOLDS
def test_an_invalid_index_is_rebuilt_and_one_sync_runs_at_a_time(tenants):
    alice, _ = tenants
    sync_chunk_indexes()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass",
            [CHUNK_INDEXES.index_name(alice.pk)],
        )
    assert alice.pk not in CHUNK_INDEXES.indexed_tenants()
    assert search.meaning_plan(alice.pk) == "exact"  # an invalid index is never relied on
    assert alice.pk in sync_chunk_indexes().built
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [CHUNK_INDEXES.lock_key])
        assert sync_chunk_indexes().skipped


@LOW_THRESHOLDS
def test_the_command_and_the_beat_task_sync(tenants, capsys):
    alice, charlie = tenants
    call_command("resources_indexes", "--min-rows", "50")
    out = capsys.readouterr().out
    assert f"built the index of tenant {alice.pk}" in out
    assert f"built the index of tenant {charlie.pk}" in out
    assert sync_resource_tenant_indexes() == {"built": [], "dropped": [charlie.pk], "failed": []}
    call_command("resources_indexes")
    assert "up to date" in capsys.readouterr().out


@LOW_THRESHOLDS
def test_search_over_http_through_the_tenants_index_shows_no_other_team(tenants, client_for):
    alice, charlie = tenants
    sync_chunk_indexes()
    for client, tenant in ((client_for(alice), alice), (client_for(charlie), charlie)):
        results = client.get("/resources/search?q=passage&limit=50").json()["results"]
        assert results
        mine = set(Resource.objects.for_tenant(tenant).values_list("path", flat=True))
        assert {hit["id"] for hit in results} <= mine


@LOW_THRESHOLDS
def test_a_build_is_not_bound_by_the_requests_statement_timeout(tenants):
    """Builds take minutes for a big tenant; every connection has SLOP_DB_STATEMENT_TIMEOUT."""
    alice, _ = tenants
    seen: list[str] = []

    def watch(execute, sql, params, many, context):
        if sql.startswith("CREATE INDEX"):
            with context["connection"].connection.cursor() as raw:
                raw.execute("SELECT current_setting('statement_timeout')")
                seen.append(raw.fetchone()[0])
        return execute(sql, params, many, context)

    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = '15s'")
    try:
        with connection.execute_wrapper(watch):
            report = sync_chunk_indexes()
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('statement_timeout')")
            after = cursor.fetchone()[0]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")
    assert set(report.built) == {alice.pk} and not report.failed
    assert seen == ["0"]
    assert after != "0"  # the connection's own timeout is back for what it runs next
