"""Hybrid search over a tenant's resources: words (PostgreSQL full text) and meaning (embeddings).

Both rankers work on chunks and keep each resource's best chunk:
- words: `websearch_to_tsquery` against the chunks' generated tsvector (GIN), ranked by `ts_rank_cd`;
- meaning: cosine distance between the query's embedding and the chunks' embeddings.
The two rankings are fused with reciprocal rank fusion (RRF) and scaled so a resource ranked first
by both scores 1.0; a resource only one ranker found scores at most 0.5.

Completeness: a tenant with an HNSW index of its own (RESOURCES_TENANT_INDEX_MIN_CHUNKS chunks or
more, apps/resources/tenant_indexes.py) is ranked through it: every row it yields is the tenant's.
Every other tenant is ranked exactly (a scan of its own rows), so a small tenant among large ones
gets its full top-k. An index scan is widened until enough of the tenant's resources pass the
filters, and the exact scan answers when even the widest cannot fill the page. Chunks are found
by words from the moment their write returns, and by meaning once they have a vector (at once for
small writes, when its job ends for large ones).

Round trips: one. The words ranking, the meaning ranking, their fusion and the page's resources
with snippets are one statement (_search_statement), with `hnsw.ef_search` set before it in the
same message for a tenant with its own index (the planner picks that index by itself there; the
settings that would force it would also keep the words ranking off its GIN index). An index scan
that cannot fill the candidates goes on in steps (_search_in_steps: widened, then the exact scan).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import DEFERRED

from apps.core.embeddings import embed_text
from apps.core.vector_indexes import has_iterative_scan
from apps.resources.models import SEARCH_CONFIG, Resource
from apps.resources.tenant_indexes import CHUNK_INDEXES
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

    def chunks_sql(self) -> tuple[str, str, list[Any]]:
        """FROM and WHERE for the tenant's chunks (`c`) that pass the filters, and the parameters.

        The join to the resource (`r`) only when a filter is on the resource: a chunk's tenant is
        its resource's, and the join cost a lookup per candidate chunk (per matching chunk for
        the words ranking: thousands for a query of common words)."""
        chunks = f"{_chunk_table()} c"
        if self.type is None and self.prefix is None and self.readable_prefixes is None:
            return chunks, "TRUE", []
        where, params = self.sql()
        return f"{chunks} JOIN {Resource._meta.db_table} r ON r.id = c.resource_id", where, params


def _chunk_table() -> str:
    from apps.resources.models import ResourceChunk

    return ResourceChunk._meta.db_table


def _words_statement(*, query: str, filters: Filters, limit: int) -> tuple[str, list[Any]]:
    chunks, where, params = filters.chunks_sql()
    sql = f"""
        SELECT resource_id, chunk_id, rank FROM (
            SELECT DISTINCT ON (c.resource_id) c.resource_id, c.id AS chunk_id,
                   ts_rank_cd(c.search_vector, q.query, 32) AS rank
            FROM {chunks}, websearch_to_tsquery(%s::regconfig, %s) AS q(query)
            WHERE c.tenant_id = %s AND c.search_vector @@ q.query AND {where}
            ORDER BY c.resource_id, rank DESC, c.position
        ) best
        ORDER BY rank DESC, resource_id
        LIMIT %s
    """  # noqa: S608 - identifiers are ours; values are parameters
    return sql, [SEARCH_CONFIG, query, filters.tenant_id, *params, limit]


def _ranked(rows: list[tuple[Any, ...]]) -> list[Ranked]:
    return [Ranked(int(row[0]), int(row[1]), float(row[2])) for row in rows]


def rank_by_words(*, query: str, filters: Filters, limit: int) -> list[Ranked]:
    (rows,) = run_statements([_words_statement(query=query, filters=filters, limit=limit)])
    return _ranked(rows)


def run_statements(statements: list[tuple[str, list[Any]]]) -> list[list[tuple[Any, ...]]]:
    """Several statements in one round trip: their rows, in order.

    Django's psycopg cursors bind parameters client-side, so the statements travel as one simple
    query, which PostgreSQL runs as one implicit transaction: a `set_config(…, true)` in it holds
    for the statements after it, and ends with them (as SET LOCAL inside BEGIN … COMMIT would,
    without those two round trips)."""
    sql = ";\n".join(statement for statement, _ in statements)
    params = [param for _, statement_params in statements for param in statement_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        results = [cursor.fetchall()]
        while cursor.nextset():
            results.append(cursor.fetchall())
    return results


def _vector_literal(vector: list[float]) -> str:
    # printf-style in a list: ~2x faster than an f-string generator, and this runs every search.
    return "[" + ",".join(["%.7g" % x for x in vector]) + "]"  # noqa: UP031


def meaning_plan(tenant_id: int) -> str:
    """How the tenant's chunks are ranked by meaning: "tenant_index" (its own partial HNSW index,
    apps/resources/tenant_indexes.py) or "exact" (a scan of its own chunks).

    There is no shared HNSW index over every tenant's chunks: it served only a tenant between the
    tenant-index threshold and its index's build, and every chunk written paid for it (an HNSW
    insert, the costliest part of a write after the embedding)."""
    return "tenant_index" if CHUNK_INDEXES.has_tenant_index(tenant_id) else "exact"


def _exact_statement(*, vector: str, filters: Filters, limit: int) -> tuple[str, list[Any]]:
    chunks, where, params = filters.chunks_sql()
    # Grouping per resource keeps the planner off the HNSW index: this scans the tenant's own
    # chunks and is exact.
    sql = f"""
        SELECT resource_id, chunk_id, distance FROM (
            SELECT DISTINCT ON (c.resource_id) c.resource_id, c.id AS chunk_id,
                   c.embedding <=> %s::vector AS distance
            FROM {chunks}
            WHERE c.tenant_id = %s AND c.embedding IS NOT NULL AND {where}
            ORDER BY c.resource_id, distance, c.position
        ) best
        ORDER BY distance, resource_id
        LIMIT %s
    """  # noqa: S608
    return sql, [vector, filters.tenant_id, *params, limit]


def _index_statements(
    *, vector: str, filters: Filters, fetch: int, plan: str, force: bool = True
) -> list[tuple[str, list[Any]]]:
    """The settings and the nearest `fetch` chunks through the tenant's own HNSW index, as
    statements for run_statements.

    `force`: planner settings that leave the index scan the only plan (no sequential or bitmap
    scans, no sorts). They hold for the whole message, so a statement that also ranks by words
    goes without them (its GIN index is a bitmap scan): for a tenant with its own index (20k
    chunks or more, a LIMIT of at most 1000) the planner picks that index by itself, and should
    it not, the exact ranking it picks instead is complete, only slower."""
    assert plan == "tenant_index", plan
    chunks, where, params = filters.chunks_sql()
    # The tenant's own index is partial (WHERE tenant_id = N): the planner matches its predicate
    # against a literal only, never a bound parameter. tenant_id is an int.
    sql = f"""
        SELECT c.resource_id, c.id, c.embedding <=> %s::vector AS distance
        FROM {chunks}
        WHERE c.tenant_id = {int(filters.tenant_id)} AND c.embedding IS NOT NULL AND {where}
        ORDER BY c.embedding <=> %s::vector
        LIMIT %s
    """  # noqa: S608 - identifiers and an int are interpolated; values are parameters
    # Vector index scans only: the tenant's btree plus a sort is the exact scan, which the plan
    # already chose against.
    planner = ("enable_seqscan", "enable_bitmapscan", "enable_sort") if force else ()
    configs = ["set_config('hnsw.ef_search', %s, true)"] + [
        f"set_config('{name}', 'off', true)" for name in planner
    ]
    if has_iterative_scan():  # pgvector 0.8+: keep scanning until enough rows pass the filters
        configs.append("set_config('hnsw.iterative_scan', 'relaxed_order', true)")
    settings_sql = "SELECT " + ", ".join(configs)
    return [
        (settings_sql, [str(min(MAX_EF_SEARCH, fetch))]),
        (sql, [vector, *params, vector, fetch]),
    ]


def _best_per_resource(rows: list[tuple[Any, ...]], limit: int) -> list[Ranked]:
    best: dict[int, Ranked] = {}
    for resource_pk, chunk_pk, distance in sorted(rows, key=lambda row: float(row[2])):
        if resource_pk not in best:
            best[resource_pk] = Ranked(int(resource_pk), int(chunk_pk), float(distance))
    return list(best.values())[:limit]


def _first_fetch(limit: int) -> int:
    return max(100, limit * 4)


def _rank(
    *, words: tuple[str, list[Any]] | None, vector: str | None, filters: Filters, limit: int
) -> tuple[list[Ranked] | None, list[Ranked] | None, str | None]:
    """Words and meaning rankings (None for a ranker not asked for) and the meaning plan.

    The common case is one round trip: the words statement, then the meaning statements. An index
    scan that cannot fill the page is widened (one more round trip each), then the exact scan
    answers: complete wins over fast."""
    statements = [words] if words is not None else []
    plan = meaning_plan(filters.tenant_id) if vector is not None else None
    fetch = _first_fetch(limit)
    if vector is not None:
        if plan == "exact":
            statements.append(_exact_statement(vector=vector, filters=filters, limit=limit))
        else:
            statements.extend(_index_statements(vector=vector, filters=filters, fetch=fetch, plan=str(plan)))
    results = run_statements(statements)
    by_words = _ranked(results[0]) if words is not None else None
    if vector is None:
        return by_words, None, None
    if plan == "exact":
        return by_words, _ranked(results[-1]), plan
    meaning = _best_per_resource(results[-1], limit)
    while len(meaning) < limit:
        if fetch >= MAX_EF_SEARCH:
            # The widest index scan cannot fill the page (filters, or a tenant whose rows are few
            # near the query): the exact scan decides.
            (rows,) = run_statements([_exact_statement(vector=vector, filters=filters, limit=limit)])
            return by_words, _ranked(rows), "exact"
        fetch = min(MAX_EF_SEARCH, fetch * 4)
        results = run_statements(
            _index_statements(vector=vector, filters=filters, fetch=fetch, plan=str(plan))
        )
        meaning = _best_per_resource(results[-1], limit)
    return by_words, meaning, plan


def rank_by_meaning(*, query: str, filters: Filters, limit: int) -> list[Ranked]:
    vector = _vector_literal(embed_text(query, tenant_id=filters.tenant_id))
    _, meaning, _ = _rank(words=None, vector=vector, filters=filters, limit=limit)
    return meaning or []


def _resources_with_snippets(tenant_id: int, query: str, best: list[tuple[int, int]]) -> dict[int, Resource]:
    """The (resource pk, chunk pk) pairs' resources (content deferred), each with `snippet`: the
    words of its chunk around the match. One statement for both."""
    if not best:
        return {}
    # The tenant in the SQL for both tables, not only the ids: this statement reads text out.
    sql = f"""
        SELECT r.id, r.tenant_id, r.path, r.title, r.type, r.metadata, r.created_at, r.updated_at,
               r.index_job_id,
               ts_headline(%s::regconfig, c.text, websearch_to_tsquery(%s::regconfig, %s), %s) AS snippet
        FROM unnest(%s::bigint[], %s::bigint[]) AS best(resource_id, chunk_id)
        JOIN {Resource._meta.db_table} r ON r.id = best.resource_id AND r.tenant_id = %s
        LEFT JOIN {_chunk_table()} c ON c.id = best.chunk_id AND c.tenant_id = %s
    """  # noqa: S608
    options = SNIPPET_OPTIONS + ', StartSel="", StopSel=""'
    params = [
        SEARCH_CONFIG,
        SEARCH_CONFIG,
        query,
        options,
        [resource_pk for resource_pk, _ in best],
        [chunk_pk for _, chunk_pk in best],
        tenant_id,
        tenant_id,
    ]
    return {resource.pk: resource for resource in Resource.objects.unscoped().raw(sql, params)}


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


def _search_statement(
    *,
    query: str,
    filters: Filters,
    words: tuple[str, list[Any]] | None,
    meaning: tuple[str, list[Any]] | None,
    plan: str | None,
    candidates: int,
    floor: float,
    limit: int,
) -> tuple[str, list[Any]]:
    """Both rankings, their fusion and the page's resources with snippets, as one statement.

    The same results as ranking, fusing (fuse()) and fetching (_resources_with_snippets) in turn:
    places are row numbers in each ranking's own order, the score the same float sums. The last
    row (resource NULL) carries how many resources the meaning ranking found before the
    similarity floor, so an index scan that fell short is widened as before (_search_in_steps)."""
    tenant = int(filters.tenant_id)
    ctes: list[str] = []
    params: list[Any] = []
    sources: list[str] = []
    if words is not None:
        ctes.append(f"words AS MATERIALIZED ({words[0]})")
        ctes.append(
            "w AS (SELECT resource_id, chunk_id, row_number() OVER (ORDER BY rank DESC, resource_id) AS place"
            " FROM words)"
        )
        params.extend(words[1])
        sources.append("w")
    found = "0"
    if meaning is not None:
        if plan == "exact":
            ctes.append(f"best AS MATERIALIZED ({meaning[0]})")
        else:
            ctes.append(f"nearest AS MATERIALIZED ({meaning[0]})")
            ctes.append(
                "best AS MATERIALIZED (SELECT resource_id, chunk_id, distance FROM ("
                " SELECT DISTINCT ON (resource_id) resource_id, id AS chunk_id, distance FROM nearest"
                " ORDER BY resource_id, distance, id) per_resource ORDER BY distance, resource_id LIMIT %s)"
            )
        params.extend(meaning[1])
        if plan != "exact":
            params.append(candidates)
        ctes.append(
            "m AS (SELECT resource_id, chunk_id, row_number() OVER (ORDER BY distance, resource_id) AS place"
            " FROM best WHERE distance <= %s)"
        )
        params.append(floor)
        sources.append("m")
        found = "(SELECT count(*) FROM best)"
    score = " + ".join(f"coalesce(1::float8 / ({RRF_K} + {source}.place), 0)" for source in sources)
    if len(sources) == 2:
        scored = (
            "SELECT coalesce(w.resource_id, m.resource_id) AS resource_id,"  # noqa: S608
            " coalesce(w.chunk_id, m.chunk_id) AS chunk_id,"  # the first ranker's chunk gives the snippet
            f" w.place AS words_place, m.place AS meaning_place, {score} AS score"
            " FROM w FULL OUTER JOIN m ON m.resource_id = w.resource_id"
        )
    else:
        (only,) = sources
        words_place, meaning_place = ("place", "NULL::bigint") if only == "w" else ("NULL::bigint", "place")
        scored = (
            f"SELECT resource_id, chunk_id, {words_place} AS words_place, {meaning_place} AS meaning_place,"  # noqa: S608
            f" {score} AS score FROM {only}"
        )
    # Ties go to the first ranker's place, then the resource pk (as fuse()).
    tie = "words_place" if sources[0] == "w" else "meaning_place"
    order = f"score DESC, coalesce({tie}, 1000000), resource_id"
    ctes.append(
        f"fused AS MATERIALIZED (SELECT *, row_number() OVER (ORDER BY {order}) AS ord"  # noqa: S608
        f" FROM ({scored}) scored ORDER BY {order} LIMIT %s)"
    )
    params.append(limit)
    # The tenant in the SQL for both tables, not only the ids: this statement reads text out.
    page = f"""
        SELECT f.ord, f.resource_id, f.words_place, f.meaning_place, f.score,
               r.tenant_id, r.path, r.title, r.type, r.metadata, r.created_at, r.updated_at, r.index_job_id,
               ts_headline(%s::regconfig, c.text, websearch_to_tsquery(%s::regconfig, %s), %s)
        FROM fused f
        JOIN {Resource._meta.db_table} r ON r.id = f.resource_id AND r.tenant_id = {tenant}
        LEFT JOIN {_chunk_table()} c ON c.id = f.chunk_id AND c.tenant_id = {tenant}
        UNION ALL
        SELECT NULL, NULL, NULL, NULL, {found}, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    """  # noqa: S608 - identifiers and an int are interpolated; values are parameters
    sql = "WITH " + ",\n".join(ctes) + page
    params.extend([SEARCH_CONFIG, SEARCH_CONFIG, query, SNIPPET_OPTIONS + ', StartSel="", StopSel=""'])
    return sql, params


_RESOURCE_COLUMNS = (
    "id", "tenant_id", "path", "title", "type", "metadata", "created_at", "updated_at", "index_job_id",
)  # fmt: skip


def _resource_from_row(values: tuple[Any, ...]) -> Resource:
    """A Resource (content deferred) from the statement's columns, as the ORM would load it."""
    given = dict(zip(_RESOURCE_COLUMNS, values, strict=True))
    metadata = given["metadata"]
    given["metadata"] = json.loads(metadata) if isinstance(metadata, str) else metadata
    fields = [field.attname for field in Resource._meta.concrete_fields]
    return Resource.from_db(connection.alias, fields, [given.get(name, DEFERRED) for name in fields])


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
    """The tenant's resources best matching `query`, best first. `mode`: hybrid, words or meaning.

    One round trip in the common case: the rankings, their fusion and the page's resources with
    snippets are one statement (with the index settings before it in the same message)."""
    filters = Filters(tenant_id=tenant.pk, readable_prefixes=readable_prefixes, type=type, prefix=prefix)
    if readable_prefixes == []:
        return []
    candidates = max(limit * 3, 30)
    words = _words_statement(query=query, filters=filters, limit=candidates) if mode != "meaning" else None
    vector = _vector_literal(embed_text(query, tenant_id=tenant.pk)) if mode != "words" else None
    floor = 1.0 - settings.RESOURCES_MIN_SIMILARITY
    statements: list[tuple[str, list[Any]]] = []
    meaning: tuple[str, list[Any]] | None = None
    plan = meaning_plan(filters.tenant_id) if vector is not None else None
    if vector is not None:
        if plan == "exact":
            meaning = _exact_statement(vector=vector, filters=filters, limit=candidates)
        else:
            # Without the planner settings that force the index scan: they would hold for the words
            # ranking in the same statement too and keep it off its GIN index (measured 193 ms
            # against 29 ms at 72k chunks).
            *statements, meaning = _index_statements(
                vector=vector, filters=filters, fetch=_first_fetch(candidates), plan=str(plan), force=False
            )
    statements.append(
        _search_statement(
            query=query,
            filters=filters,
            words=words,
            meaning=meaning,
            plan=plan,
            candidates=candidates,
            floor=floor,
            limit=limit,
        )
    )
    rows = run_statements(statements)[-1]
    found = next(int(row[4]) for row in rows if row[0] is None)
    if vector is not None and plan != "exact" and found < candidates:
        # The index scan could not fill the candidates (filters, or few of the tenant's rows near
        # the query): widened, then the exact scan, as the rankings in steps do.
        return _search_in_steps(query=query, filters=filters, words=words, vector=vector, limit=limit)
    rankers = (words is not None) + (vector is not None)
    best_possible = rankers / (RRF_K + 1)
    hits = []
    for row in sorted((row for row in rows if row[0] is not None), key=lambda row: int(row[0])):
        resource = _resource_from_row((row[1], *row[5:13]))
        hits.append(
            SearchHit(
                resource=resource,
                score=round(min(1.0, float(row[4]) / best_possible), 4),
                snippet=" ".join((row[13] or "").split()),
                words_rank=int(row[2]) if row[2] is not None else None,
                meaning_rank=int(row[3]) if row[3] is not None else None,
            )
        )
    return hits


def _search_in_steps(
    *, query: str, filters: Filters, words: tuple[str, list[Any]] | None, vector: str | None, limit: int
) -> list[SearchHit]:
    """resource_search in several round trips: rank (widening an index scan that falls short, then
    the exact scan), fuse, then fetch the resources with their snippets."""
    candidates = max(limit * 3, 30)
    by_words, by_meaning, _ = _rank(words=words, vector=vector, filters=filters, limit=candidates)
    rankings: list[list[Ranked]] = []
    if by_words is not None:
        rankings.append(by_words)
    if by_meaning is not None:
        floor = 1.0 - settings.RESOURCES_MIN_SIMILARITY
        rankings.append([ranked for ranked in by_meaning if ranked.value <= floor])
    fused = fuse(rankings, limit=limit)
    resources = _resources_with_snippets(
        filters.tenant_id, query, [(pk, chunk_pk) for pk, *_, chunk_pk in fused]
    )
    hits = []
    for resource_pk, score, places, _chunk_pk in fused:
        resource = resources.get(resource_pk)
        if resource is None:  # deleted between the ranking and now
            continue
        hits.append(
            SearchHit(
                resource=resource,
                score=round(score, 4),
                snippet=" ".join((getattr(resource, "snippet", None) or "").split()),
                words_rank=places[0] if by_words is not None else None,
                meaning_rank=places[-1] if by_meaning is not None else None,
            )
        )
    return hits
