"""Resources: ingest throughput and hybrid-search latency over real HTTP.

Starts the platform (Daphne + embedded PostgreSQL in a scratch data folder, DEBUG off), makes a
tenant and a key, then:

1. ingest: POSTs `--ingest-docs` documents (~3.5 KB each, ~5 chunks) to /resources, one at a time
   and then from `--writers` threads; each is chunked and embedded with the real local model
   (all-MiniLM-L6-v2) inside the request (201). Then `--job-docs` large documents (~35 KB, ~50
   chunks each: over SLOP_RESOURCES_ASYNC_INDEX_CHARS), which answer 202 at once and are embedded
   in batches by the Celery workers `manage.py serve` starts (`--concurrency`); timed until every
   job has succeeded. Reports documents/s and chunks/s.
2. load: fills the same tenant up to `--resources` resources (10k, ~50k chunks). Embedding 50k
   chunks with the real model takes hours on a shared 2-core machine, so these rows are written
   straight into PostgreSQL (COPY) with realistic text (their tsvector is generated as usual) and
   *synthetic* vectors: real MiniLM embeddings of 64 seed passages plus Gaussian noise, so they
   cluster like real data. The HNSW index is built over them after the load.
   Then `manage.py resources_indexes` gives the tenant its own HNSW index (it is above
   SLOP_RESOURCES_TENANT_INDEX_MIN_CHUNKS).
3. search: GET /resources/search with a mix of word, identifier and sentence queries, one client
   at a time; every query's embedding is computed by the server with the real model. Reports
   p50/p95/mean latency, the query plan of the vector ranking, and, in process, the query
   embedding and the search without it separately.

`--shared-buffers` sets the embedded PostgreSQL's shared_buffers (its default, 128MB, is smaller
than the HNSW index of 60k chunks: ~140MB) before the server starts.

    .venv/bin/python bench/resources.py [--ingest-docs 40] [--job-docs 8] [--resources 10000]
        [--searches 200] [--shared-buffers 512MB]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apps.resources.chunking import split_into_chunks  # noqa: E402 - pure Python, no settings
from bench.common import free_port, manage, percentile, wait_for  # noqa: E402

WORDS = [
    "system", "data", "server", "network", "request", "response", "memory", "cache", "queue",
    "worker", "process", "thread", "kernel", "volcano", "lava", "basalt", "glacier", "river",
    "mountain", "ocean", "forest", "desert", "planet", "orbit", "comet", "asteroid", "payment",
    "invoice", "refund", "customer", "order", "shipment", "warehouse", "supplier", "contract",
    "budget", "revenue", "patient", "clinic", "therapy", "dosage", "symptom", "diagnosis",
    "vaccine", "nurse", "recipe", "flour", "butter", "oven", "sugar", "garden", "tomato", "compost",
    "soil", "seed", "harvest", "battery", "laptop", "keyboard", "screen", "hinge", "cable",
    "charger", "policy", "employee", "manager", "leave", "travel", "expense", "salary", "training",
    "meeting", "deadline", "project", "the", "a", "of", "and", "to", "in", "is", "for", "on",
    "with", "as", "by", "at", "from", "that", "this", "it", "be", "are", "was", "were", "has",
    "have", "will", "can", "may", "should", "must", "not", "more", "most", "less", "very", "quite",
    "often", "usually", "always", "never", "sometimes",
]  # fmt: skip
WEIGHTS = [1.0 / (rank + 1) ** 0.6 for rank in range(len(WORDS))]
random.shuffle(WEIGHTS)


def sentence(rng: random.Random) -> str:
    words = rng.choices(WORDS, weights=WEIGHTS, k=rng.randint(8, 18))
    if rng.random() < 0.1:
        words.insert(rng.randint(0, len(words)), f"ERR-{rng.randint(1000, 9999)}")
    return " ".join(words).capitalize() + "."


def document(rng: random.Random, chars: int = 3500) -> str:
    parts: list[str] = []
    while sum(len(part) + 1 for part in parts) < chars:
        parts.append(sentence(rng))
    return " ".join(parts)


QUERIES = [
    "volcano lava", "payment refund", "battery laptop", "ERR-4471", "ERR-1234", "glacier river",
    "employee travel expense", "how do I get money back for an order", "the screen hinge is broken",
    "tomato garden compost", "server memory queue", "what happens when a planet orbits a comet",
    "patient symptom diagnosis", "budget revenue contract", "warm oven flour sugar recipe",
]  # fmt: skip


def ingest(base: str, key: str, count: int, writers: int, tag: str, chars: int = 3500) -> tuple[float, int]:
    """Seconds to POST `count` documents from `writers` threads, and the chunks they made; for
    documents that answer 202, until their jobs have all succeeded."""
    rng = random.Random(tag)
    docs = [(f"ingest/{tag}/{index}", document(rng, chars)) for index in range(count)]
    chunks = sum(len(split_into_chunks(text, size=800, overlap=120)) for _, text in docs)
    headers = {"Authorization": f"Bearer {key}"}
    queue = list(docs)
    lock = threading.Lock()
    failures: list[str] = []
    jobs: list[str] = []

    def work() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    resource_id, text = queue.pop()
                body = {"id": resource_id, "title": f"Document {resource_id}", "content": text}
                response = client.post("/resources", json=body)
                if response.status_code == 202:
                    jobs.append(response.json()["job_id"])
                elif response.status_code != 201:
                    failures.append(response.text)

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        for job_id in jobs:
            while (status := client.get(f"/tools/jobs/{job_id}").json()["status"]) in ("queued", "running"):
                time.sleep(0.2)
            if status != "succeeded":
                failures.append(f"job {job_id}: {status}")
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"ingest failed: {failures[0]}")
    return elapsed, chunks


LOADER = r"""
import json, random, sys, time
import django
django.setup()
import numpy as np
from django.db import connection
from apps.core.embeddings import embed_texts
from apps.resources.models import Resource, ResourceChunk
from apps.tenants.models import Tenant
sys.path.insert(0, "bench")
from resources import document, split_into_chunks

target = int(sys.argv[1])
tenant = Tenant.objects.get(slug="bench")
have = Resource.objects.for_tenant(tenant).count()
rng = random.Random(7)
np_rng = np.random.default_rng(7)
seeds = np.array(embed_texts([document(rng, 700) for _ in range(64)], tenant_id=0), dtype=np.float32)
started = time.perf_counter()
table, chunk_table = Resource._meta.db_table, ResourceChunk._meta.db_table
with connection.cursor() as cursor:
    cursor.execute("DROP INDEX IF EXISTS chunk_embedding_hnsw")
made_chunks = 0
batch = 500
for first in range(have, target, batch):
    rows = []
    for index in range(first, min(target, first + batch)):
        rows.append(Resource(
            tenant=tenant, path=f"load/{index // 100}/{index}", title=f"Loaded document {index}",
            type=rng.choice(["article", "note", "runbook"]), content=document(rng),
            metadata={"created_at": "2026-01-01T00:00:00.000Z"},
        ))
    Resource.objects.bulk_create(rows)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(
            f"COPY {chunk_table} (tenant_id, resource_id, position, title, text, embedding) FROM STDIN"
        ) as copy:
            for resource in rows:
                pieces = split_into_chunks(resource.content, size=800, overlap=120)
                base = seeds[np_rng.integers(0, len(seeds), size=len(pieces))]
                vectors = base + np_rng.normal(0, 0.04, size=base.shape).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                for position, (text, vector) in enumerate(zip(pieces, vectors)):
                    literal = "[" + ",".join(f"{x:.6f}" for x in vector) + "]"
                    copy.write_row((tenant.pk, resource.pk, position, resource.title, text, literal))
                made_chunks += len(pieces)
loaded = time.perf_counter() - started
started = time.perf_counter()
with connection.cursor() as cursor:
    cursor.execute("SET maintenance_work_mem = '512MB'")
    cursor.execute(
        f"CREATE INDEX chunk_embedding_hnsw ON {chunk_table} USING hnsw (embedding vector_cosine_ops) "
        "WITH (m = 16, ef_construction = 64)"
    )
    cursor.execute(f"ANALYZE {table}")
    cursor.execute(f"ANALYZE {chunk_table}")
    cursor.execute(f"SELECT count(*) FROM {chunk_table} WHERE tenant_id = %s", [tenant.pk])
    total_chunks = cursor.fetchone()[0]
indexed = time.perf_counter() - started
print(json.dumps({"resources": Resource.objects.for_tenant(tenant).count(), "chunks": total_chunks,
                  "load_seconds": loaded, "index_seconds": indexed}))
"""

EXPLAIN = r"""
import django, sys
django.setup()
from apps.core.embeddings import embed_text
from apps.resources import search
from apps.tenants.models import Tenant
tenant = Tenant.objects.get(slug="bench")
filters = search.Filters(tenant_id=tenant.pk, readable_prefixes=None, type=None, prefix=None)
vector = search._vector_literal(embed_text("volcano lava", tenant_id=0))
plan = search.meaning_plan(tenant.pk)
print(f"meaning plan: {plan}")
if plan == "exact":
    statements = [search._exact_statement(vector=vector, filters=filters, limit=30)]
else:
    fetch = search._first_fetch(30)
    statements = search._index_statements(vector=vector, filters=filters, fetch=fetch, plan=plan)
statements[-1] = ("EXPLAIN ANALYZE " + statements[-1][0], statements[-1][1])
lines = [row[0] for row in search.run_statements(statements)[-1]]
print("\n".join("    " + line.replace(vector, "<query vector>") for line in lines[:6] + lines[-1:]))

# Where the time goes, in process: the query's embedding, then the database work of a search whose
# query embedding is already cached (words + meaning ranking, fusion, snippets).
import random, statistics, time
sys.path.insert(0, "bench")
from resources import QUERIES, WORDS
rng = random.Random(11)
embed_ms, search_ms = [], []
for index in range(60):
    query = f"{rng.choice(QUERIES)} {rng.choice(WORDS)} breakdown {index}"
    started = time.perf_counter()
    embed_text(query, tenant_id=0)
    embed_ms.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    search.resource_search(tenant=tenant, query=query, readable_prefixes=None, limit=10)
    search_ms.append((time.perf_counter() - started) * 1000)
q = lambda values, f: sorted(values)[round(f * (len(values) - 1))]
print(f"BREAKDOWN query embedding p50 {q(embed_ms, .5):.1f} ms p95 {q(embed_ms, .95):.1f} ms; "
      f"search without it p50 {q(search_ms, .5):.1f} ms p95 {q(search_ms, .95):.1f} ms")
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ingest-docs", type=int, default=40)
    parser.add_argument("--job-docs", type=int, default=8, help="large documents (202 + job)")
    parser.add_argument("--job-chars", type=int, default=35_000)
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--shared-buffers", default="", help="e.g. 512MB (embedded PostgreSQL)")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument(
        "--torch-threads", type=int, default=0, help="OMP_NUM_THREADS for the server (0: torch's default)"
    )
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="slop-bench-resources-"))
    port = free_port()
    env = {
        **os.environ,
        "SLOP_DATA_DIR": str(data_dir),
        "SECRET_KEY": "bench-only-secret-key",
        "SLOP_DEBUG": "false",
        "ALLOWED_HOSTS": "*",
        "SLOP_LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "slop_platform.settings",
        "PYTHONPATH": str(ROOT),
    }
    if args.torch_threads:
        env["OMP_NUM_THREADS"] = str(args.torch_threads)
    manage(env, "migrate", "-v0")  # before the server, whose start-up then has less to do
    if args.shared_buffers:
        # Set before the server starts: the embedded PostgreSQL stops when this command exits
        # and starts again, with the setting, under `serve`.
        manage(
            env, "shell", "-c",
            "from django.db import connection; connection.cursor().execute("
            f"\"ALTER SYSTEM SET shared_buffers = '{args.shared_buffers}'\")",
        )  # fmt: skip
    server = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "serve",
            "--no-demo",
            "--port",
            str(port),
            "--concurrency",
            str(args.concurrency),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(port, timeout=600)  # a loaded machine takes minutes to start every process
        manage(env, "create_tenant", "Bench", "--slug", "bench")
        key = manage(env, "create_api_key", "bench", "--scopes", "*")
        ingest(base, key, 2, 1, "warmup")  # loads the model in the server

        one_seconds, one_chunks = ingest(base, key, args.ingest_docs, 1, "serial")
        many_seconds, many_chunks = ingest(base, key, args.ingest_docs, args.writers, "parallel")
        # Loads the model in every worker pool process (one job each, at once).
        ingest(base, key, args.concurrency, args.concurrency, "job-warmup", args.job_chars)
        job_one = ingest(base, key, args.job_docs, 1, "jobs-serial", args.job_chars)
        job_many = ingest(base, key, args.job_docs, args.writers, "jobs-parallel", args.job_chars)

        done = subprocess.run(
            [sys.executable, "-c", LOADER, str(args.resources)],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        loaded = json.loads(done.stdout.strip().splitlines()[-1])
        started = time.perf_counter()
        # The beat task `serve` runs may be building the same index right now: wait for it.
        while subprocess.run(
            [sys.executable, "manage.py", "resources_indexes"], cwd=ROOT, env=env, capture_output=True
        ).returncode:
            time.sleep(5)
        tenant_index_seconds = time.perf_counter() - started
        plan = subprocess.run(
            [sys.executable, "-c", EXPLAIN], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        ).stdout

        latencies: list[float] = []
        empty = 0
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            for query in QUERIES:  # warm up caches (and the query-embedding cache, which is fair:
                client.get("/resources/search", params={"q": query + " warmup"})  # not reused below)
            rng = random.Random(3)
            for index in range(args.searches):
                # A fresh query text each time, so no query embedding comes from the cache.
                query = f"{rng.choice(QUERIES)} {rng.choice(WORDS)} {index}"
                started = time.perf_counter()
                response = client.get("/resources/search", params={"q": query, "limit": 10})
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"search failed: {response.text}")
                empty += not response.json()["results"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(data_dir, ignore_errors=True)

    threads = args.torch_threads or "default"
    buffers = args.shared_buffers or "128MB (default)"
    print(f"PostgreSQL shared_buffers: {buffers}; Celery workers: {args.concurrency}")
    print(
        f"Ingest over HTTP (POST /resources, real MiniLM embeddings in the request, ~3.5 KB documents; "
        f"torch threads: {threads})"
    )
    print(
        f"  1 writer:  {args.ingest_docs / one_seconds:6.2f} documents/s  "
        f"{one_chunks / one_seconds:7.1f} chunks/s  ({args.ingest_docs} docs, {one_chunks} chunks)"
    )
    print(
        f"  {args.writers} writers: {args.ingest_docs / many_seconds:6.2f} documents/s  "
        f"{many_chunks / many_seconds:7.1f} chunks/s"
    )
    for label, (seconds, chunks) in (("1 writer: ", job_one), (f"{args.writers} writers:", job_many)):
        print(
            f"  jobs, {label} {args.job_docs / seconds:6.2f} documents/s  {chunks / seconds:7.1f} chunks/s  "
            f"(~{args.job_chars // 1000} KB documents: 202, embedded in batches on the workers, "
            f"timed until every job succeeded; {chunks} chunks)"
        )
    print(
        f"Loaded to {loaded['resources']} resources / {loaded['chunks']} chunks in one tenant "
        f"(COPY with synthetic vectors: {loaded['load_seconds']:.0f}s; "
        f"HNSW build {loaded['index_seconds']:.0f}s; the tenant's own index {tenant_index_seconds:.0f}s)"
    )
    plan_lines = [line for line in plan.rstrip().splitlines() if not line.startswith("BREAKDOWN")]
    breakdown = [line for line in plan.splitlines() if line.startswith("BREAKDOWN")]
    print("Vector ranking plan:\n" + "\n".join(plan_lines))
    print(f"GET /resources/search, {args.searches} queries, 1 client, limit=10 ({empty} with no results)")
    print(
        f"  p50 {percentile(latencies, 0.5):.1f} ms   p95 {percentile(latencies, 0.95):.1f} ms   "
        f"mean {statistics.mean(latencies):.1f} ms"
    )
    if breakdown:
        print("In process (60 queries): " + breakdown[0].removeprefix("BREAKDOWN "))


if __name__ == "__main__":
    main()
