"""GET /resources/search talks to the database once, for a tenant ranked exactly and for one with its
own index: both rankings, their fusion and the page's resources with snippets are one statement
(after the index's ef_search in the same message), and it answers exactly what ranking, fusing and
fetching in separate steps answer, for every mode and filter."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.resources import search
from apps.resources.tenant_indexes import sync_chunk_indexes
from tests.resources.test_tenant_indexes import LOW_THRESHOLDS, clustered, tenants  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

FILTERS = [
    {},
    {"prefix": "docs/1"},
    {"readable_prefixes": ["docs/0/1", "docs/1/3"]},
    {"type": "document"},
    {"type": "no-such-type"},
]


def search_statements(captured: CaptureQueriesContext) -> list[str]:
    # Catalog reads cached per process (pgvector's version, which tenants have an index) aside.
    return [
        query["sql"]
        for query in captured.captured_queries
        if "pg_extension" not in query["sql"] and "pg_index" not in query["sql"]
    ]


def as_tuples(hits: list[search.SearchHit]) -> list[tuple[object, ...]]:
    return [
        (hit.resource.pk, hit.resource.path, hit.resource.title, hit.score, hit.snippet,
         hit.words_rank, hit.meaning_rank)
        for hit in hits
    ]  # fmt: skip


def compare(tenant, monkeypatch, *, query: str, seed: int, mode: str, filters: dict) -> list[str]:
    vector = clustered(1, seed)[0].tolist()
    monkeypatch.setattr(search, "embed_text", lambda text, tenant_id: vector)
    options = {"readable_prefixes": None, "type": None, "prefix": None, **filters}
    with CaptureQueriesContext(connection) as captured:
        hits = search.resource_search(tenant=tenant, query=query, limit=10, mode=mode, **options)
    statements = search_statements(captured)
    by_steps = search._search_in_steps(
        query=query,
        filters=search.Filters(tenant_id=tenant.pk, **options),
        words=search._words_statement(
            query=query, filters=search.Filters(tenant_id=tenant.pk, **options), limit=30
        )
        if mode != "meaning"
        else None,
        vector=search._vector_literal(vector) if mode != "words" else None,
        limit=10,
    )
    assert as_tuples(hits) == as_tuples(by_steps), (mode, filters)
    if not filters:
        assert hits
    return statements


@LOW_THRESHOLDS
@pytest.mark.parametrize("mode", ["hybrid", "meaning", "words"])
def test_one_statement_answers_what_the_steps_answer(tenants, monkeypatch, mode):  # noqa: F811
    alice, charlie = tenants
    for label in ("exact", "own index"):
        if label == "own index":
            sync_chunk_indexes()
        for seed in (5, 6):
            for filters in FILTERS:
                for tenant in (alice, charlie):
                    compare(tenant, monkeypatch, query="passage 2", seed=seed, mode=mode, filters=filters)


@LOW_THRESHOLDS
def test_a_search_is_one_round_trip(tenants, monkeypatch):  # noqa: F811
    alice, charlie = tenants
    sync_chunk_indexes()
    # An exact scan: one statement. Its own index: ef_search and the statement in one message.
    for tenant in (charlie, alice):
        compare(tenant, monkeypatch, query="passage 1", seed=7, mode="hybrid", filters={})  # caches warm
        statements = compare(tenant, monkeypatch, query="passage 1", seed=7, mode="hybrid", filters={})
        assert len(statements) == 1, statements
        assert "ts_headline" in statements[0] and "websearch_to_tsquery" in statements[0]


@LOW_THRESHOLDS
def test_a_short_index_scan_is_widened_then_exact(tenants, monkeypatch):  # noqa: F811
    alice, _ = tenants
    sync_chunk_indexes()
    # Few of alice's resources pass this filter: the first index scan cannot fill the candidates.
    filters = {"readable_prefixes": ["docs/0/1"]}
    compare(alice, monkeypatch, query="passage", seed=8, mode="meaning", filters=filters)
    statements = compare(alice, monkeypatch, query="passage", seed=8, mode="meaning", filters=filters)
    assert len(statements) > 1
