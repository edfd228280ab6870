"""Hybrid search over a tenant's resources: words (PostgreSQL full text) and meaning (embeddings).

Both rankers work on chunks and keep each resource's best chunk:
- words: `websearch_to_tsquery` against the chunks' generated tsvector (GIN), ranked by `ts_rank_cd`;
- meaning: cosine distance between the query's embedding and the chunks' embeddings.
The two rankings are fused with reciprocal rank fusion (RRF) and scaled so a resource ranked first
by both scores 1.0; a resource only one ranker found scores at most 0.5.

Completeness: a tenant with at most RESOURCES_EXACT_SEARCH_MAX_CHUNKS chunks is ranked exactly (a
scan of its own rows, which the tenant index keeps small), so a small tenant among large ones gets
its full top-k. A larger tenant goes through the HNSW index with over-fetch (`hnsw.ef_search`),
widened until enough of its resources pass the filters, and ranked exactly when even the widest
index scan cannot fill the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from apps.core.embeddings import embed_text
from apps.resources.models import SEARCH_CONFIG, Resource
from apps.tenants.models import Tenant

RRF_K = 10  # small: with tens of candidates, the first places should weigh clearly more
MAX_EF_SEARCH = 1000  # pgvector's upper bound for hnsw.ef_search
SNIPPET_OPTIONS = "MaxWords=30, MinWords=12, MaxFragments=1, ShortWord=2"


@dataclass(frozen=True)
class SearchHit:
    resource: Resource
    score: float
    snippet: str
    words_rank: int | None
    meaning_rank: int | None

    def as_result(self) -> dict[str, Any]:
        """The seed's search result (`GET /resources/search` and the `resource_search` tool)."""
        return {
            "id": self.resource.path,
            "title": self.resource.title,
            "type": self.resource.type,
            "score": self.score,
            "snippet": self.snippet,
        }


@dataclass(frozen=True)
class Ranked:
    resource_pk: int
    chunk_pk: int
    value: float  # words: ts_rank_cd (higher is better); meaning: cosine distance (lower is better)


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass(frozen=True)
class Filters:
    tenant_id: int
    readable_prefixes: list[str] | None
    type: str | None
    prefix: str | None

    def sql(self) -> tuple[str, list[Any]]:
        """Conditions on `r` (the resource) as SQL and parameters."""
        clauses = ["r.tenant_id = %s"]
        params: list[Any] = [self.tenant_id]
        if self.type:
            clauses.append("r.type = %s")
            params.append(self.type)
        if self.prefix:
            clauses.append("r.path LIKE %s")
            params.append(_like_prefix(self.prefix))
        if self.readable_prefixes is not None:
            if not self.readable_prefixes:
                clauses.append("FALSE")
            else:
                clauses.append("(" + " OR ".join("r.path LIKE %s" for _ in self.readable_prefixes) + ")")
                params.extend(_like_prefix(prefix) for prefix in self.readable_prefixes)
        return " AND ".join(clauses), params


def _chunk_table() -> str:
    from apps.resources.models import ResourceChunk

    return ResourceChunk._meta.db_table


def rank_by_words(*, query: str, filters: Filters, limit: int) -> list[Ranked]:
    where, params = filters.sql()
    sql = f"""
        SELECT resource_id, chunk_id, rank FROM (
            SELECT DISTINCT ON (c.resource_id) c.resource_id, c.id AS chunk_id,
                   ts_rank_cd(c.search_vector, q.query, 32) AS rank
            FROM {_chunk_table()} c
            JOIN {Resource._meta.db_table} r ON r.id = c.resource_id,
                 websearch_to_tsquery(%s::regconfig, %s) AS q(query)
            WHERE c.tenant_id = %s AND c.search_vector @@ q.query AND {where}
            ORDER BY c.resource_id, rank DESC, c.position
        ) best
        ORDER BY rank DESC, resource_id
        LIMIT %s
    """  # noqa: S608 - identifiers are ours; values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, [SEARCH_CONFIG, query, filters.tenant_id, *params, limit])
        return [Ranked(row[0], row[1], float(row[2])) for row in cursor.fetchall()]


def _vector_literal(vector: list[float]) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"


def _tenant_is_small(tenant_id: int) -> bool:
    threshold = settings.RESOURCES_EXACT_SEARCH_MAX_CHUNKS
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {_chunk_table()} WHERE tenant_id = %s LIMIT %s) s",  # noqa: S608
            [tenant_id, threshold + 1],
        )
        (count,) = cursor.fetchone()
    return int(count) <= threshold


def _rank_by_meaning_exact(*, vector: str, filters: Filters, limit: int) -> list[Ranked]:
    where, params = filters.sql()
    # Grouping per resource keeps the planner off the HNSW index: this scans the tenant's own
    # chunks and is exact.
    sql = f"""
        SELECT resource_id, chunk_id, distance FROM (
            SELECT DISTINCT ON (c.resource_id) c.resource_id, c.id AS chunk_id,
                   c.embedding <=> %s::vector AS distance
            FROM {_chunk_table()} c JOIN {Resource._meta.db_table} r ON r.id = c.resource_id
            WHERE c.tenant_id = %s AND c.embedding IS NOT NULL AND {where}
            ORDER BY c.resource_id, distance, c.position
        ) best
        ORDER BY distance, resource_id
        LIMIT %s
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [vector, filters.tenant_id, *params, limit])
        return [Ranked(row[0], row[1], float(row[2])) for row in cursor.fetchall()]


def _rank_by_meaning_hnsw(*, vector: str, filters: Filters, limit: int) -> list[Ranked] | None:
    """Best chunks through the index, over-fetching; None when the index cannot fill the page."""
    where, params = filters.sql()
    sql = f"""
        SELECT c.resource_id, c.id, c.embedding <=> %s::vector AS distance
        FROM {_chunk_table()} c JOIN {Resource._meta.db_table} r ON r.id = c.resource_id
        WHERE c.tenant_id = %s AND c.embedding IS NOT NULL AND {where}
        ORDER BY c.embedding <=> %s::vector
        LIMIT %s
    """  # noqa: S608
    fetch = max(100, limit * 8)
    while True:
        ef_search = min(MAX_EF_SEARCH, fetch)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
            cursor.execute(sql, [vector, filters.tenant_id, *params, vector, fetch])
            rows = cursor.fetchall()
        best: dict[int, Ranked] = {}
        for resource_pk, chunk_pk, distance in rows:
            if resource_pk not in best:
                best[resource_pk] = Ranked(resource_pk, chunk_pk, float(distance))
        if len(best) >= limit:
            return list(best.values())[:limit]
        if fetch >= MAX_EF_SEARCH:
            return None
        fetch = min(MAX_EF_SEARCH, fetch * 4)


def rank_by_meaning(*, query: str, filters: Filters, limit: int) -> list[Ranked]:
    vector = _vector_literal(embed_text(query, tenant_id=filters.tenant_id))
    if not _tenant_is_small(filters.tenant_id):
        ranked = _rank_by_meaning_hnsw(vector=vector, filters=filters, limit=limit)
        if ranked is not None:
            return ranked
    return _rank_by_meaning_exact(vector=vector, filters=filters, limit=limit)


def _snippets(tenant_id: int, query: str, chunk_pks: list[int]) -> dict[int, str]:
    if not chunk_pks:
        return {}
    # The tenant in the SQL, not only the ids: this statement reads chunk text out.
    sql = f"""
        SELECT c.id, ts_headline(%s::regconfig, c.text, websearch_to_tsquery(%s::regconfig, %s), %s)
        FROM {_chunk_table()} c WHERE c.tenant_id = %s AND c.id = ANY(%s)
    """  # noqa: S608
    options = SNIPPET_OPTIONS + ', StartSel="", StopSel=""'
    with connection.cursor() as cursor:
        cursor.execute(sql, [SEARCH_CONFIG, SEARCH_CONFIG, query, options, tenant_id, chunk_pks])
        return {row[0]: " ".join((row[1] or "").split()) for row in cursor.fetchall()}


def fuse(rankings: list[list[Ranked]], *, limit: int) -> list[tuple[int, float, list[int | None], int]]:
    """RRF over the rankings: (resource pk, score in [0, 1], rank in each ranking, best chunk pk)."""
    if not rankings:
        return []
    scores: dict[int, float] = {}
    places: dict[int, list[int | None]] = {}
    chunk_of: dict[int, int] = {}
    for index, ranking in enumerate(rankings):
        for place, ranked in enumerate(ranking, start=1):
            scores[ranked.resource_pk] = scores.get(ranked.resource_pk, 0.0) + 1.0 / (RRF_K + place)
            places.setdefault(ranked.resource_pk, [None] * len(rankings))[index] = place
            chunk_of.setdefault(ranked.resource_pk, ranked.chunk_pk)  # the first ranker's chunk wins
    best_possible = len(rankings) / (RRF_K + 1)
    ordered = sorted(scores, key=lambda pk: (-scores[pk], places[pk][0] or 1_000_000, pk))[:limit]
    return [(pk, min(1.0, scores[pk] / best_possible), places[pk], chunk_of[pk]) for pk in ordered]


def resource_search(
    *,
    tenant: Tenant,
    query: str,
    readable_prefixes: list[str] | None,
    limit: int = 10,
    type: str | None = None,
    prefix: str | None = None,
    mode: str = "hybrid",
) -> list[SearchHit]:
    """The tenant's resources best matching `query`, best first. `mode`: hybrid, words or meaning."""
    filters = Filters(tenant_id=tenant.pk, readable_prefixes=readable_prefixes, type=type, prefix=prefix)
    if readable_prefixes == []:
        return []
    candidates = max(limit * 3, 30)
    rankings: list[list[Ranked]] = []
    if mode in ("hybrid", "words"):
        rankings.append(rank_by_words(query=query, filters=filters, limit=candidates))
    if mode in ("hybrid", "meaning"):
        meaning = rank_by_meaning(query=query, filters=filters, limit=candidates)
        floor = 1.0 - settings.RESOURCES_MIN_SIMILARITY
        rankings.append([ranked for ranked in meaning if ranked.value <= floor])
    fused = fuse(rankings, limit=limit)
    resources = Resource.objects.for_tenant(tenant).defer("content").in_bulk([pk for pk, *_ in fused])
    snippets = _snippets(tenant.pk, query, [chunk_pk for *_, chunk_pk in fused])
    hits = []
    for resource_pk, score, places, chunk_pk in fused:
        resource = resources.get(resource_pk)
        if resource is None:  # deleted between the ranking and now
            continue
        words_rank = places[0] if mode in ("hybrid", "words") else None
        meaning_rank = places[-1] if mode in ("hybrid", "meaning") else None
        hits.append(
            SearchHit(
                resource=resource,
                score=round(score, 4),
                snippet=snippets.get(chunk_pk, ""),
                words_rank=words_rank,
                meaning_rank=meaning_rank,
            )
        )
    return hits
