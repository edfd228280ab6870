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

`--runtime onnx` runs the server on the fp32 model (the default: SLOP_EMBEDDINGS_RUNTIME, else
onnx-int8, the platform's default); the embedding-cost lines compare both runtimes in any case.

    .venv/bin/python bench/resources.py [--ingest-docs 40] [--job-docs 8] [--resources 10000]
        [--searches 200] [--shared-buffers 512MB] [--runtime onnx]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apps.resources.chunking import split_into_chunks  # noqa: E402 - pure Python, no settings
from bench.common import free_port, manage, percentile, wait_for  # noqa: E402
from bench.cpu import describe, postmaster_pid, since, snapshot  # noqa: E402
from bench.request_profile import describe as describe_request  # noqa: E402

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
        # One job at a time, asked again after 5 % of the time so far (0.1-3 s): the end is seen
        # within 5 %, and the polls (whose web CPU is counted with the ingestion) stay few even
        # when a loaded machine makes the jobs take minutes (every 0.5 s was ~4 ms of web CPU per
        # chunk at load 12).
        for job_id in jobs:
            while (status := client.get(f"/tools/jobs/{job_id}").json()["status"]) in ("queued", "running"):
                time.sleep(min(3.0, max(0.1, (time.perf_counter() - started) * 0.05)))
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
statements[-1] = ("EXPLAIN (ANALYZE, BUFFERS) " + statements[-1][0], statements[-1][1])
lines = [row[0] for row in search.run_statements(statements)[-1]]
print("\n".join("    " + line.replace(vector, "<query vector>") for line in lines[:6] + lines[-2:]))
words = search._words_statement(query="volcano lava", filters=filters, limit=30)
(lines,) = search.run_statements([("EXPLAIN (ANALYZE, BUFFERS) " + words[0], words[1])])
print("words ranking plan ('volcano lava'):")
print("\n".join("    " + row[0] for row in lines[-3:]))
"""

# Where a search's time goes in the server (bench/request_profile.py), and the search in one
# statement against the previous steps (ranking, then fusion, then the resources with snippets),
# the two taking turns on the same queries.
PROFILE = r"""
import django, json, random, statistics, sys, time
django.setup()
from django.test import Client
from apps.resources import search
from apps.tenants.models import Tenant
from apps.tenants.services import api_key_create
from bench.request_profile import profile
sys.path.insert(0, "bench")
from resources import QUERIES, WORDS

tenant = Tenant.objects.get(slug="bench")
client = Client(HTTP_AUTHORIZATION="Bearer " + api_key_create(tenant=tenant, scopes="*").plaintext)
rng = random.Random(11)
send = lambda index: client.get(
    "/resources/search", {"q": f"{rng.choice(QUERIES)} {rng.choice(WORDS)} p{index}", "limit": 10}
)
print("PROFILE " + json.dumps(profile(send, 60, embed_modules=[search])))
q = statistics.median

# One statement against the steps, alternating, on queries whose embedding is cached.
filters = search.Filters(tenant_id=tenant.pk, readable_prefixes=None, type=None, prefix=None)
one, steps = [], []
for index in range(40):
    query = f"{rng.choice(QUERIES)} {rng.choice(WORDS)} steps {index}"
    search.resource_search(tenant=tenant, query=query, readable_prefixes=None, limit=10)  # embeds it
    for label, timings in (("one", one), ("steps", steps)) if index % 2 else (("steps", steps), ("one", one)):
        started = time.perf_counter()
        if label == "one":
            hits = search.resource_search(tenant=tenant, query=query, readable_prefixes=None, limit=10)
        else:
            vector = search._vector_literal(search.embed_text(query, tenant_id=tenant.pk))
            words = search._words_statement(query=query, filters=filters, limit=30)
            hits = search._search_in_steps(query=query, filters=filters, words=words, vector=vector, limit=10)
        timings.append((time.perf_counter() - started) * 1000)
print("ALTERNATING " + json.dumps({"one": q(one), "steps": q(steps)}))
"""

# CPU per chunk of the local model's forward passes by runtime, padded tokens per pass and intra-op
# threads, the variants taking turns on the same chunks (the bench's ~800-character passages, title
# first), and how far the int8 vectors are from the fp32 ones.
EMBED_COST = r"""
import django, json, random, sys, time
django.setup()
import numpy as np
sys.path.insert(0, "bench")
from resources import document
from apps.core.embeddings import bundled_model_path, onnx_export
from apps.core.embeddings.local import OnnxEncoder, onnx_directories
from apps.resources.chunking import embedding_input, split_into_chunks
rng = random.Random(5)
texts = []
while len(texts) < 192:
    pieces = split_into_chunks(document(rng, 35000), size=800, overlap=120)
    texts += [embedding_input("Document", text) for text in pieces]
texts = texts[:192]
model = bundled_model_path()
paths = {"onnx": onnx_export.ensure_exported(model, onnx_directories()),
         "onnx-int8": onnx_export.ensure_quantized(model, onnx_directories())}
shapes = [("onnx", 1, 300), ("onnx", 1, 600), ("onnx", 1, 1200), ("onnx", 1, 4800), ("onnx", 2, 600),
          ("onnx-int8", 1, 300), ("onnx-int8", 1, 600), ("onnx-int8", 1, 1200)]
variants = {shape: OnnxEncoder(model, paths[shape[0]], threads=shape[1], batch_size=64, batch_tokens=shape[2])
            for shape in shapes}
for encoder in variants.values():
    encoder.encode(texts[:4])
cpu = dict.fromkeys(variants, 0.0)
wall = dict.fromkeys(variants, 0.0)
vectors = {variant: [] for variant in variants}
for start in range(0, len(texts), 64):
    for variant, encoder in variants.items():
        c, w = time.process_time(), time.perf_counter()
        vectors[variant] += encoder.encode(texts[start:start + 64])
        cpu[variant] += time.process_time() - c
        wall[variant] += time.perf_counter() - w
cosines = (np.array(vectors[("onnx-int8", 1, 600)]) * np.array(vectors[("onnx", 1, 600)])).sum(axis=1)
tokens = sum(len(e.ids) for e in variants[shapes[0]]._tokenizer.encode_batch(texts)) / len(texts)
per_chunk = lambda seconds: seconds / len(texts) * 1000
print("EMBEDCOST " + json.dumps({
    "tokens": tokens, "int8_cosine": [float(cosines.min()), float(cosines.mean())],
    "variants": [[*shape, per_chunk(cpu[shape]), per_chunk(wall[shape])] for shape in shapes],
}))
"""


def ingest_figures(args: argparse.Namespace, measured: Callable[..., None], base: str, key: str) -> None:
    """The ingest measurements: 201s from one and from --writers writers, then 202s with jobs."""
    run = uuid.uuid4().hex[:6]  # fresh ids, so a re-run on kept data (--data-dir) creates again
    measured("201, 1 writer", args.ingest_docs, 1, f"serial-{run}")
    measured(f"201, {args.writers} writers", args.ingest_docs, args.writers, f"parallel-{run}")
    # Loads the model in every worker pool process (one job each, at once).
    ingest(base, key, args.concurrency, args.concurrency, f"job-warmup-{run}", args.job_chars)
    measured("202 + jobs, 1 writer", args.job_docs, 1, f"jobs-serial-{run}", args.job_chars)
    measured(
        f"202 + jobs, {args.writers} writers",
        args.job_docs,
        args.writers,
        f"jobs-parallel-{run}",
        args.job_chars,
    )


def run_script(env: dict[str, str], script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return done.stdout


def tagged(output: str, tag: str) -> dict:  # type: ignore[type-arg]
    line = next(line for line in output.splitlines() if line.startswith(tag + " "))
    return json.loads(line.removeprefix(tag + " "))  # type: ignore[no-any-return]


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
    parser.add_argument("--cores", type=int, default=2, help="free cores the chunks/s estimate assumes")
    parser.add_argument(
        "--runtime",
        default=os.environ.get("SLOP_EMBEDDINGS_RUNTIME", "onnx-int8"),
        choices=["onnx", "onnx-int8", "torch"],
        help="SLOP_EMBEDDINGS_RUNTIME of the server",
    )
    parser.add_argument(
        "--data-dir", help="keep the database here; a re-run reuses its loaded tenant (and skips the load)"
    )
    parser.add_argument(
        "--only-search",
        action="store_true",
        help="skip the ingest and embedding-cost parts: load, then search",
    )
    args = parser.parse_args()

    keep = bool(args.data_dir)
    data_dir = Path(args.data_dir) if keep else Path(tempfile.mkdtemp(prefix="slop-bench-resources-"))
    data_dir.mkdir(parents=True, exist_ok=True)
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
        "SLOP_RATE_LIMIT_PER_MINUTE": "0",  # measure the request path, not the limiter's 429s
        "SLOP_DB_STATEMENT_TIMEOUT": "0",  # the load takes minutes on a busy machine
        "SLOP_EMBEDDINGS_RUNTIME": args.runtime,
    }
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
        start_new_session=True,  # its whole group is stopped at the end, whatever happens
    )
    base = f"http://127.0.0.1:{port}"
    figures: dict[str, tuple[float, int, dict[str, float]]] = {}
    started_at = time.monotonic()

    def measured(label: str, count: int, writers: int, tag: str, chars: int = 3500) -> None:
        roots = [server.pid, postmaster_pid(data_dir)]
        before = snapshot(roots)
        seconds, chunks = ingest(base, key, count, writers, tag, chars)
        figures[label] = (seconds, chunks, since(before, roots))

    try:
        wait_for(port, timeout=600)  # a loaded machine takes minutes to start every process
        state_file = data_dir / "bench-resources.json"
        reused = state_file.exists()
        if not reused:
            manage(env, "create_tenant", "Bench", "--slug", "bench")
        key = manage(env, "create_api_key", "bench", "--scopes", "*")
        ingest(base, key, 2, 1, f"warmup-{uuid.uuid4().hex[:6]}")  # loads the model in the server
        if not args.only_search:
            ingest_figures(args, measured, base, key)
        embed_cost = None if args.only_search else tagged(run_script(env, EMBED_COST), "EMBEDCOST")
        if reused:
            loaded = json.loads(state_file.read_text())
        else:
            loaded = json.loads(run_script(env, LOADER, str(args.resources)).strip().splitlines()[-1])
        started = time.perf_counter()
        # The beat task `serve` runs may be building the same index right now: wait for it.
        while subprocess.run(
            [sys.executable, "manage.py", "resources_indexes"], cwd=ROOT, env=env, capture_output=True
        ).returncode:
            time.sleep(5)
        if not reused:
            loaded["tenant_index_seconds"] = time.perf_counter() - started
            state_file.write_text(json.dumps(loaded))
        tenant_index_seconds = loaded["tenant_index_seconds"]
        if not args.only_search:
            # Writes into the big tenant now: each chunk's vector also goes into its own HNSW index.
            measured(
                f"202 + jobs, {args.writers} writers, into the {loaded['chunks'] // 1000}k-chunk tenant",
                args.job_docs, args.writers, f"jobs-big-{uuid.uuid4().hex[:6]}", args.job_chars,
            )  # fmt: skip
        plan = run_script(env, EXPLAIN)
        profile_output = run_script(env, PROFILE)
        profile, alternating = tagged(profile_output, "PROFILE"), tagged(profile_output, "ALTERNATING")

        latencies: list[float] = []
        empty = 0
        roots = [server.pid, postmaster_pid(data_dir)]
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            for query in QUERIES:  # warm up caches (and the query-embedding cache, which is fair:
                client.get("/resources/search", params={"q": query + " warmup"})  # not reused below)
            rng = random.Random(3)
            before = snapshot(roots)
            for index in range(args.searches):
                # A fresh query text each time, so no query embedding comes from the cache.
                query = f"{rng.choice(QUERIES)} {rng.choice(WORDS)} {index}"
                started = time.perf_counter()
                response = client.get("/resources/search", params={"q": query, "limit": 10})
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"search failed: {response.text}")
                empty += not response.json()["results"]
            search_cpu = since(before, roots)
            repeated: list[float] = []
            for index in range(40):  # the same texts again: their embeddings come from the cache
                query = f"{rng.choice(QUERIES)} {rng.choice(WORDS)} {index}"
                client.get("/resources/search", params={"q": query, "limit": 10})
                started = time.perf_counter()
                client.get("/resources/search", params={"q": query, "limit": 10})
                repeated.append((time.perf_counter() - started) * 1000)
            # The queries above carry a number no document has, so their words ranking finds next
            # to nothing; these are the plain queries, whose common words match thousands of
            # chunks that all get ranked (embeddings cached: the second round).
            common: list[float] = []
            for round_ in range(2):
                for query in QUERIES:
                    started = time.perf_counter()
                    client.get("/resources/search", params={"q": query, "limit": 10})
                    if round_:
                        common.append((time.perf_counter() - started) * 1000)
    finally:
        stop(server)
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)

    buffers = args.shared_buffers or "128MB (default)"
    print(f"PostgreSQL shared_buffers: {buffers}; Celery workers: {args.concurrency}; "
          f"{time.monotonic() - started_at:.0f} s in all")  # fmt: skip
    print(
        f"Ingest over HTTP (POST /resources, real MiniLM embeddings, runtime {args.runtime}). "
        "Wall-clock chunks/s follow the machine's load; CPU per chunk (every platform process: web, "
        f"Celery, PostgreSQL, Redis) does not, and gives the rate on {args.cores} free cores."
    )
    for label, (seconds, chunks, spent) in figures.items():
        per_chunk = sum(spent.values()) / chunks
        print(
            f"  {label}: {chunks / seconds:6.1f} chunks/s wall ({chunks} chunks in {seconds:.1f} s); "
            f"{describe(spent, chunks, 'chunk')} -> {args.cores / per_chunk:.0f} chunks/s "
            f"on {args.cores} cores"
        )
    print(
        f"  (201: ~3.5 KB documents embedded in the request; 202: ~{args.job_chars // 1000} KB "
        "documents answered at once, embedded in batches on the workers, timed until every job succeeded)"
    )
    if embed_cost is not None:
        print(
            f"Embedding CPU per chunk (~{embed_cost['tokens']:.0f} tokens), ONNX Runtime,"
            " variants taking turns:"
        )
        for runtime, threads, tokens, cpu, wall in embed_cost["variants"]:
            print(
                f"  {runtime:9s} {threads} thread(s), passes of <= {tokens:4d} padded tokens: "
                f"{cpu:5.1f} ms CPU, {wall:5.1f} ms wall per chunk"
            )
        low, mean = embed_cost["int8_cosine"]
        print(f"  int8 vectors against fp32: cosine min {low:.4f}, mean {mean:.4f}")
    print(
        f"Loaded to {loaded['resources']} resources / {loaded['chunks']} chunks in one tenant "
        f"(COPY with synthetic vectors: {loaded['load_seconds']:.0f}s; "
        f"the tenant's own HNSW index {tenant_index_seconds:.0f}s)"
    )
    print("Vector ranking plan:\n" + plan.rstrip())
    print(f"GET /resources/search, {args.searches} queries, 1 client, limit=10 ({empty} with no results)")
    print(
        f"  p50 {percentile(latencies, 0.5):.1f} ms   p95 {percentile(latencies, 0.95):.1f} ms   "
        f"mean {statistics.mean(latencies):.1f} ms; {describe(search_cpu, args.searches, 'search')}"
    )
    print(f"  the same queries again (embedding cached): p50 {percentile(repeated, 0.5):.1f} ms")
    print(
        f"  the {len(QUERIES)} plain queries (common words, thousands of chunks matched; embedding cached):"
        f" p50 {percentile(common, 0.5):.1f} ms, max {max(common):.1f} ms"
    )
    print(f"In the server, through Django's stack (60 new queries): {describe_request(profile)}")
    print(
        f"  search with a cached embedding, alternating: one statement p50 {alternating['one']:.1f} ms, "
        f"the previous steps (rank, fuse, fetch) p50 {alternating['steps']:.1f} ms"
    )
    print(f"Load: {' '.join(f'{value:.1f}' for value in os.getloadavg())} (1, 5, 15 min)")


def stop(server: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """`serve` stops what it started (SIGTERM); whatever of its session is left after a minute is
    killed, so the benchmark never leaves processes behind."""
    server.terminate()
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signal.SIGKILL)  # leftovers of its session, if any


if __name__ == "__main__":
    main()
