"""Semantic query is complete for a small tenant in a big table and served by the index for a big one.

Synthetic, clustered unit vectors stand in for embeddings so the table can be large; the thresholds
are lowered so a few thousand rows exercise the same paths a million rows would.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.db import connection
from django.test import override_settings

from apps.core.vector_indexes import pgvector_version
from apps.memory.search import (
    _exact,
    _iterative,
    _over_fetch,
    has_iterative_scan,
    nearest_ids,
    search_plan,
    vector_literal,
)

pytestmark = pytest.mark.django_db

DIMENSIONS = 384
CENTERS = np.random.default_rng(7).normal(size=(40, DIMENSIONS))
RNG = np.random.default_rng(11)


@pytest.fixture(autouse=True)
def _same_data_in_every_test():
    global RNG
    RNG = np.random.default_rng(11)


def clustered(count: int) -> np.ndarray:
    picks = CENTERS[RNG.integers(0, len(CENTERS), size=count)]
    vectors = picks + RNG.normal(scale=0.6, size=(count, DIMENSIONS))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def insert(tenant_id: int, vectors: np.ndarray, key_prefix: str = "item/") -> None:
    rows = [
        (
            tenant_id,
            f"{key_prefix}{index}",
            json.dumps({"n": index}),
            "synthetic",
            "0" * 64,
            "synthetic",
            vector_literal(vector.tolist()),
        )
        for index, vector in enumerate(vectors)
    ]
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO memory_memoryitem (tenant_id, key, value, embedding_text, content_hash,"
            " embedding_model, embedding, created_at, updated_at)"
            " VALUES (%s, %s, %s::jsonb, %s, %s, %s, %s::vector, now(), now())",
            rows,
        )
        cursor.execute("ANALYZE memory_memoryitem")


@pytest.fixture
def big_table(make_tenant):
    """charlie: 1500 rows, alice: 300 rows (index path), bob: 30 rows (exact path)."""
    charlie, alice, bob = make_tenant("Charlie"), make_tenant("Alice"), make_tenant("Bob")
    insert(charlie.pk, clustered(1500))
    insert(alice.pk, clustered(150), key_prefix="a/")
    insert(alice.pk, clustered(150), key_prefix="b/")
    insert(bob.pk, clustered(30))
    return {"alice": alice, "bob": bob, "charlie": charlie}


def ids(hits):
    return [item_id for item_id, _ in hits]


@override_settings(SLOP_MEMORY_EXACT_SEARCH_MAX_ROWS=100, SLOP_MEMORY_MIN_EF_SEARCH=40)
def test_small_tenant_gets_the_exact_full_top_k(big_table):
    bob = big_table["bob"]
    for query in clustered(10):
        hits, plan = nearest_ids(tenant_id=bob.pk, vector=query.tolist(), limit=10, prefixes=None)
        assert plan == "exact"
        literal = vector_literal(query.tolist())
        assert ids(hits) == ids(_exact(bob.pk, literal, None, 10, 0.0))
        assert len(hits) == 10


@override_settings(SLOP_MEMORY_EXACT_SEARCH_MAX_ROWS=100, SLOP_MEMORY_MIN_EF_SEARCH=40)
def test_big_tenant_is_served_by_the_index_with_high_recall(big_table):
    alice = big_table["alice"]
    plan, ef = search_plan(alice.pk, None, 10)
    assert plan == "index"
    assert 10 < ef <= 1000
    recalls = []
    for query in clustered(20):
        hits, plan = nearest_ids(tenant_id=alice.pk, vector=query.tolist(), limit=10, prefixes=None)
        assert plan == "index"
        assert len(hits) == 10
        exact = ids(_exact(alice.pk, vector_literal(query.tolist()), None, 10, 0.0))
        recalls.append(len(set(ids(hits)) & set(exact)) / 10)
    assert sum(recalls) / len(recalls) >= 0.9


@override_settings(SLOP_MEMORY_EXACT_SEARCH_MAX_ROWS=100, SLOP_MEMORY_MIN_EF_SEARCH=40)
def test_prefix_filters_apply_inside_the_search_and_still_fill_the_limit(big_table):
    alice = big_table["alice"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM memory_memoryitem WHERE tenant_id = %s AND key LIKE 'a/%%'", [alice.pk]
        )
        allowed = {row[0] for row in cursor.fetchall()}
    for query in clustered(5):
        hits, _ = nearest_ids(tenant_id=alice.pk, vector=query.tolist(), limit=20, prefixes=["a/"])
        assert len(hits) == 20
        assert set(ids(hits)) <= allowed


@override_settings(SLOP_MEMORY_EXACT_SEARCH_MAX_ROWS=100, SLOP_MEMORY_MIN_EF_SEARCH=40)
def test_scores_respect_min_score_on_both_paths(big_table):
    for tenant in (big_table["alice"], big_table["bob"]):
        query = clustered(1)[0].tolist()
        hits, _ = nearest_ids(tenant_id=tenant.pk, vector=query, limit=50, prefixes=None, min_score=0.5)
        exact = _exact(tenant.pk, vector_literal(query), None, 50, 0.5)
        assert all(distance <= 0.5 + 1e-6 for _, distance in hits)
        assert len(hits) == len(exact)


@override_settings(SLOP_MEMORY_EXACT_SEARCH_MAX_ROWS=100, SLOP_MEMORY_MIN_EF_SEARCH=40)
def test_a_row_written_is_found_by_the_next_index_query(big_table):
    alice = big_table["alice"]
    fresh = clustered(1)
    insert(alice.pk, fresh, key_prefix="fresh/")
    literal = vector_literal(fresh[0].tolist())
    for hits in (
        _over_fetch(alice.pk, literal, None, 5, 0.0, 200)[0],
        nearest_ids(tenant_id=alice.pk, vector=fresh[0].tolist(), limit=5, prefixes=None)[0],
    ):
        with connection.cursor() as cursor:
            cursor.execute("SELECT key FROM memory_memoryitem WHERE id = %s", [hits[0][0]])
            assert cursor.fetchone()[0] == "fresh/0"
        assert hits[0][1] == pytest.approx(0.0, abs=1e-5)


@override_settings(SLOP_MEMORY_EXACT_SEARCH_MAX_ROWS=100, SLOP_MEMORY_MIN_EF_SEARCH=40)
def test_iterative_scan_on_pgvector_0_8(db, request):
    """Runs against a PostgreSQL with pgvector 0.8+ (DATABASE_URL, e.g. compose's pgvector image)."""
    if not has_iterative_scan():
        pytest.skip(
            f"pgvector {pgvector_version()} has no iterative scan (the embedded pgserver ships 0.6.2)"
        )
    alice = request.getfixturevalue("big_table")["alice"]
    recalls = []
    for query in clustered(10):
        literal = vector_literal(query.tolist())
        hits = _iterative(alice.pk, literal, ["a/"], 10, 0.0, 40)
        exact = ids(_exact(alice.pk, literal, ["a/"], 10, 0.0))
        assert len(hits) == 10
        recalls.append(len(set(ids(hits)) & set(exact)) / 10)
    assert sum(recalls) / len(recalls) >= 0.9


def test_the_embedded_database_takes_the_over_fetch_path(db):
    assert pgvector_version() >= (0, 6)
    assert has_iterative_scan() == (pgvector_version() >= (0, 8))
