"""Memory at scale: throughput of GET/POST /memory, and semantic query latency + recall in a big table.

What it does, on a scratch embedded PostgreSQL (pgserver, pgvector 0.6.2):
1. Loads a table of --total-rows synthetic vectors with COPY (binary): a "big" tenant with
   --big-rows items, a "small" tenant with 50 items, the rest spread over other tenants; then
   builds the shared HNSW index (parallel, in memory), then the big tenant's own partial index
   (apps/memory/tenant_indexes.py, as the beat task would).
   The vectors are synthetic: unit vectors with a low intrinsic dimension (a random 32-d latent
   projected to 384-d plus noise), which is how sentence embeddings behave, unlike uniform noise.
2. In process: query latency (p50/p95) and recall@10 against an exact scan for the big tenant
   (through the shared index, then through its own) and the small tenant, through the same code
   the endpoint runs (apps.memory.search.nearest_ids), and how many results a plain filtered
   HNSW query would have given the small tenant.
3. Over HTTP against Daphne (`manage.py serve`) with wrk at --connections: GET /memory/:key and
   POST /memory (each POST a new text, so each one embeds), and /memory/query end to end (the
   real model embeds the query) for the big and the small tenant.
4. Embedding cost with the local model on each runtime (--runtimes: the default int8 ONNX model and
   fp32 ONNX by default, side by side; `torch` can be added): a query alone (p50/p95, wall and
   CPU), and per text in batches. The HTTP part runs once per runtime too.

    .venv/bin/python bench/memory.py [--total-rows 1000000] [--big-rows 100000] [--seconds 10]
        [--data-dir DIR] [--only-queries | --only-embeddings] [--runtimes onnx-int8 onnx torch]
        [--no-shared-index --tenant-index-min-rows N]
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from unittest import mock

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import free_port, percentile, wait_for  # noqa: E402
from bench.cpu import describe, postmaster_pid, since, snapshot  # noqa: E402
from bench.request_profile import describe as describe_request  # noqa: E402
from bench.request_profile import profile  # noqa: E402

DIMENSIONS = 384
LATENT = 32


class Vectors:
    """Unit vectors with a 32-d latent structure, reproducible."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = np.random.default_rng(seed)
        self.projection = self.rng.normal(size=(LATENT, DIMENSIONS)).astype(np.float32)

    def sample(self, count: int) -> np.ndarray:
        latent = self.rng.normal(size=(count, LATENT)).astype(np.float32)
        vectors = latent @ self.projection + self.rng.normal(scale=0.3, size=(count, DIMENSIONS)).astype(
            np.float32
        )
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def setup_django(data_dir: Path) -> None:
    os.environ.update(
        {
            "SLOP_DATA_DIR": str(data_dir),
            "SECRET_KEY": "bench-only-secret-key",
            "SLOP_DEBUG": "false",
            "ALLOWED_HOSTS": "*",
            "SLOP_LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "slop_platform.settings",
            "SLOP_DB_POOL": "false",
            "SLOP_RATE_LIMIT_PER_MINUTE": "0",  # measure the request path, not the limiter's 429s
            "SLOP_DB_STATEMENT_TIMEOUT": "0",  # the load and the index builds take minutes
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.db import connection

    # The HNSW index of a big table must fit in shared buffers (pgserver's default is 128 MB);
    # this takes effect the next time the scratch server starts (a re-run with --data-dir).
    with connection.cursor() as cursor:
        cursor.execute("SHOW shared_buffers")
        print(f"shared_buffers = {cursor.fetchone()[0]}", flush=True)
        cursor.execute(f"ALTER SYSTEM SET shared_buffers = '{os.environ.get('BENCH_SHARED_BUFFERS', '2GB')}'")


def raw_connection():  # type: ignore[no-untyped-def]
    import psycopg
    from django.db import connection
    from pgvector.psycopg import register_vector

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    conn = psycopg.connect(**params, autocommit=True)
    register_vector(conn)
    return conn


def load(
    total_rows: int, big_rows: int, vectors: Vectors, shared_index: bool = True
) -> dict[str, int | None]:
    from apps.tenants.services import tenant_create

    big = tenant_create(name="Big tenant").pk
    small = tenant_create(name="Small tenant").pk
    others = [tenant_create(name=f"Other {index}").pk for index in range(9)]
    other_rows = total_rows - big_rows - 50
    plan = [(big, big_rows), (small, 50)] + [(tenant, other_rows // 9) for tenant in others]
    plan[-1] = (plan[-1][0], plan[-1][1] + other_rows - (other_rows // 9) * 9)
    conn = raw_connection()
    started = time.monotonic()
    conn.execute("DROP INDEX IF EXISTS memory_item_embedding_hnsw")
    # Interleave tenants in the heap, as real traffic would.
    order = np.concatenate([np.full(rows, tenant, dtype=np.int64) for tenant, rows in plan])
    np.random.default_rng(3).shuffle(order)
    counters: dict[int, int] = {}
    batch = 20_000
    with (
        conn.cursor() as cursor,
        cursor.copy(
            "COPY memory_memoryitem (tenant_id, key, value, embedding_text, content_hash, embedding_model,"
            " embedding, created_at, updated_at) FROM STDIN (FORMAT BINARY)"
        ) as copy,
    ):
        copy.set_types(
            [
                "int8",
                "varchar",
                "jsonb",
                "text",
                "varchar",
                "varchar",
                "vector",
                "timestamptz",
                "timestamptz",
            ]
        )
        now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        from datetime import datetime

        stamp = datetime.fromisoformat(now)
        for start in range(0, len(order), batch):
            chunk = order[start : start + batch]
            block = vectors.sample(len(chunk))
            for tenant, vector in zip(chunk.tolist(), block, strict=True):
                number = counters.get(tenant, 0)
                counters[tenant] = number + 1
                copy.write_row(
                    (
                        tenant,
                        f"item/{number}",
                        json.dumps({"n": number}),
                        "synthetic",
                        "0" * 64,
                        "synthetic",
                        vector,
                        stamp,
                        stamp,
                    )
                )
            print(f"  loaded {start + len(chunk):>9,} rows  {time.monotonic() - started:6.1f}s", flush=True)
    loaded = time.monotonic() - started
    print(f"  COPY: {total_rows:,} rows in {loaded:.1f}s", flush=True)
    if not shared_index:
        conn.execute("VACUUM ANALYZE memory_memoryitem")
        conn.close()
        return {"big": big, "small": small, "load_seconds": int(loaded), "index_seconds": None}
    started = time.monotonic()
    conn.execute("SET maintenance_work_mem = '6GB'")
    conn.execute("SET max_parallel_maintenance_workers = 2")
    conn.execute(
        "CREATE INDEX memory_item_embedding_hnsw ON memory_memoryitem"
        " USING hnsw (embedding vector_cosine_ops)"
        " WITH (m = 16, ef_construction = 64)"
    )
    built = time.monotonic() - started
    conn.execute("VACUUM ANALYZE memory_memoryitem")
    print(f"  HNSW index: built in {built:.1f}s", flush=True)
    conn.close()
    return {"big": big, "small": small, "load_seconds": int(loaded), "index_seconds": int(built)}


def query_figures(tenant_id: int, vectors: Vectors, queries: int) -> dict[str, float]:
    from apps.memory.search import _exact, nearest_ids, vector_literal

    latencies, recalls, counts, plans = [], [], [], set()
    for vector in vectors.sample(queries):
        started = time.perf_counter()
        hits, plan = nearest_ids(tenant_id=tenant_id, vector=vector.tolist(), limit=10, prefixes=None)
        latencies.append((time.perf_counter() - started) * 1000)
        plans.add(plan)
        exact = _exact(tenant_id, vector_literal(vector.tolist()), None, 10, 0.0)
        recalls.append(len({i for i, _ in hits} & {i for i, _ in exact}) / max(len(exact), 1))
        counts.append(len(hits))
    return {
        "p50": statistics.median(latencies),
        "p95": percentile(latencies, 0.95),
        "recall": statistics.mean(recalls),
        "min_results": min(counts),
        "plans": ",".join(sorted(plans)),
    }


def naive_hnsw_results(tenant_id: int, vectors: Vectors, queries: int) -> float:
    """How many of 10 results a plain HNSW scan filtered by tenant gives (pgvector 0.6 defaults).

    An HNSW scan yields at most hnsw.ef_search (40) rows and pgvector filters them afterwards, so
    this is the 40 nearest rows of the whole table, then the tenant's among them."""
    from django.db import connection

    from apps.memory.search import vector_literal

    found = []
    for vector in vectors.sample(queries):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM (SELECT tenant_id FROM memory_memoryitem"
                " ORDER BY embedding <=> %s::vector LIMIT 40) s WHERE tenant_id = %s",
                [vector_literal(vector.tolist()), tenant_id],
            )
            found.append(min(cursor.fetchone()[0], 10))
    return statistics.mean(found)


def wrk(
    url: str, seconds: int, connections: int, headers: list[str], script: Path | None = None
) -> dict[str, str]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for header in headers:
        command += ["-H", header]
    if script:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output:
        raise SystemExit(f"errors during the run:\n{output}")
    return {
        "rps": re.search(r"Requests/sec:\s+([\d.]+)", output).group(1),  # type: ignore[union-attr]
        "p50": re.search(r"50%\s+(\S+)", output).group(1),  # type: ignore[union-attr]
        "p99": re.search(r"99%\s+(\S+)", output).group(1),  # type: ignore[union-attr]
    }


POST_SCRIPT = """
wrk.headers["Content-Type"] = "application/json"
local counter = 0
local words = {"project", "budget", "holiday", "recipe", "meeting",
               "invoice", "garden", "guitar", "travel", "doctor"}
request = function()
  counter = counter + 1
  local thread = tostring(math.random(1, 1000000000))
  local word = words[(counter % #words) + 1]
  local body = '{"key": "bench/' .. thread .. '/' .. counter .. '", "value": {"note": "' .. word ..
    ' note ' .. thread .. ' number ' .. counter .. '", "tags": ["' .. word .. '"]}}'
  return wrk.format("POST", "/memory", nil, body)
end
"""


def http_figures(
    port: int,
    key: str,
    big_key: str,
    small_key: str,
    seconds: int,
    connections: int,
    tmp: Path,
    roots: list[int | None],
) -> dict[str, object]:
    import httpx

    base = f"http://127.0.0.1:{port}"
    auth = f"Authorization: Bearer {key}"
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        client.post("/memory", json={"key": "user_preference", "value": {"theme": "dark", "language": "en"}})
    wrk(f"{base}/memory/user_preference", 2, connections, [auth])  # warm up
    get = wrk(f"{base}/memory/user_preference", seconds, connections, [auth])
    script = tmp / "post.lua"
    script.write_text(POST_SCRIPT)
    wrk(f"{base}/memory", 2, connections, [auth], script)
    post = wrk(f"{base}/memory", seconds, connections, [auth], script)
    query_latency = {}
    query_cpu = {}
    texts = [
        "project planning threads",
        "what theme settings do I have",
        "travel plans for spring",
        "doctor appointment",
    ]
    for label, tenant_key in (("big", big_key), ("small", small_key)):
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {tenant_key}"}, timeout=60
        ) as client:
            timings = []
            before = snapshot(roots)
            for index in range(120):
                body = {"query": f"{texts[index % len(texts)]} {uuid.uuid4().hex[:6]}", "limit": 10}
                started = time.perf_counter()
                response = client.post("/memory/query", json=body)
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200 and len(response.json()["results"]) == 10, response.text
            query_cpu[label] = describe(since(before, roots), 120, "query")
            timings = timings[20:]
            query_latency[label] = (statistics.median(timings), percentile(timings, 0.95))
    return {"get": get, "post": post, "query": query_latency, "query_cpu": query_cpu}


def embedding_costs(runtimes: list[str]) -> dict[str, dict[str, float]]:
    """Each runtime of the local model, through the provider the platform uses (coalescer
    included): a short query alone (p50/p95 over 100, wall and CPU), and per text in batches of 32
    and 128.

    The runtimes take turns text by text and batch by batch, so a shared machine's changing load
    falls on both alike."""
    from django.conf import settings

    from apps.core.embeddings import LocalProvider, bundled_model_path

    providers = {}
    for runtime in runtimes:
        provider = LocalProvider(
            bundled_model_path(),
            settings.SLOP_EMBEDDINGS_BATCH_SIZE,
            runtime=runtime,
            threads=settings.SLOP_EMBEDDINGS_THREADS,
        )
        provider.embed(["warm up the model"])
        assert provider.runtime == runtime, f"asked for {runtime}, got {provider.runtime}"
        providers[runtime] = provider
    queries = [f"what did we decide about the {n % 7} budget {uuid.uuid4().hex[:6]}" for n in range(120)]
    timings: dict[str, list[float]] = {runtime: [] for runtime in runtimes}
    cpu: dict[str, list[float]] = {runtime: [] for runtime in runtimes}
    for query in queries:
        for runtime, provider in providers.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            provider.embed([query])
            timings[runtime].append((time.perf_counter() - started) * 1000)
            cpu[runtime].append((time.process_time() - cpu_started) * 1000)
    figures = {
        runtime: {
            "single_p50": statistics.median(t[20:]),
            "single_p95": percentile(t[20:], 0.95),
            "single_cpu_p50": statistics.median(cpu[runtime][20:]),
            "single_cpu_p95": percentile(cpu[runtime][20:], 0.95),
        }
        for runtime, t in timings.items()
    }
    texts = [
        f"user note {index}: meeting about the {index % 7} budget and holiday plans {uuid.uuid4().hex[:6]}"
        for index in range(256)
    ]
    for size in (32, 128):
        spent = dict.fromkeys(runtimes, 0.0)
        for start in range(0, 256, size):
            for runtime, provider in providers.items():
                started = time.perf_counter()
                provider.embed(texts[start : start + size])
                spent[runtime] += time.perf_counter() - started
        for runtime in runtimes:
            figures[runtime][f"batch{size}"] = spent[runtime] / 256 * 1000
    return figures


def request_path_profiles(big_key: str, small_key: str) -> dict[str, dict[str, float]]:
    """Where POST /memory/query's time goes inside the server (bench/request_profile.py): new query
    texts (embedded) and repeated ones (the tenant's cached embedding), big and small tenant."""
    from django.test import Client

    from apps.memory import search as memory_search

    figures = {}
    for label, tenant_key in (("big tenant", big_key), ("small tenant", small_key)):
        client = Client(HTTP_AUTHORIZATION=f"Bearer {tenant_key}")
        salt = uuid.uuid4().hex[:6]

        def send(index: int, client: Client = client, salt: str = salt) -> object:
            body = {"query": f"travel plans for spring {salt} {index}", "limit": 10}
            return client.post("/memory/query", body, content_type="application/json")

        figures[f"{label}, new texts"] = profile(send, 60, embed_modules=[memory_search])
        figures[f"{label}, repeated texts"] = profile(send, 60, embed_modules=[memory_search])
    return figures


def serve_and_measure(
    runtime: str, key: str, big_key: str, small_key: str, args: argparse.Namespace, data_dir: Path
) -> dict[str, object]:
    from django.db import connections

    connections.close_all()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--no-demo", "--port", str(port)],
        cwd=ROOT,
        env={
            **os.environ,
            "SLOP_DB_POOL": "true",
            "SLOP_DB_POOL_MAX": "16",
            "SLOP_RATE_LIMIT_PER_MINUTE": "0",  # measure the request path, not the limiter's 429s
            "SLOP_EMBEDDINGS_RUNTIME": runtime,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # so whatever of it is left at the end can be stopped
    )
    try:
        wait_for(port, timeout=600)  # a loaded machine takes minutes to start every process
        print(f"HTTP (`serve`, embeddings on {runtime})", flush=True)
        roots = [server.pid, postmaster_pid(data_dir)]
        return http_figures(port, key, big_key, small_key, args.seconds, args.connections, data_dir, roots)
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(server.pid, signal.SIGKILL)  # leftovers of its session, if any


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--total-rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--sweep", action="store_true", help="also try the over-fetch --factors")
    parser.add_argument("--factors", type=float, nargs="+", default=[1.0, 2.0, 4.0, 8.0])
    parser.add_argument("--efs", type=int, nargs="+", default=[40, 64, 100, 200])
    parser.add_argument(
        "--prepare-only", action="store_true", help="create the scratch database (settings) and stop"
    )
    parser.add_argument("--only-queries", action="store_true", help="skip the HTTP and embedding parts")
    parser.add_argument(
        "--only-embeddings", action="store_true", help="only the embedding cost per runtime (no database)"
    )
    parser.add_argument(
        "--runtimes",
        nargs="+",
        default=["onnx-int8", "onnx"],
        choices=["onnx-int8", "onnx", "torch"],
        help="local embedding runtimes to measure side by side (embedding cost and HTTP)",
    )
    parser.add_argument("--data-dir", help="keep the database here (reused when it already holds the table)")
    parser.add_argument(
        "--no-shared-index",
        action="store_true",
        help="skip the HNSW index over every tenant (its build at 1M rows takes over an hour on a loaded"
        " machine) and the figures through it: the big and the small tenant's queries do not use it",
    )
    parser.add_argument(
        "--tenant-index-min-rows",
        type=int,
        help="build own indexes only for tenants this big (default: the setting, 20k: every tenant here)",
    )
    args = parser.parse_args()
    if args.only_embeddings:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slop_platform.settings")
        os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
        os.environ.setdefault("SLOP_LOG_LEVEL", "WARNING")
        import django

        django.setup()
        print(f"Embedding cost (local model on {', '.join(args.runtimes)}, taking turns)", flush=True)
        print_embedding_costs(embedding_costs(args.runtimes))
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    keep = bool(args.data_dir)
    data_dir = Path(args.data_dir) if keep else Path(tempfile.mkdtemp(prefix="slop-bench-memory-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    if not keep:  # also when a step fails (registered first, so it runs after pgserver's own exit)
        atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
    setup_django(data_dir)
    if args.prepare_only:
        return
    from apps.tenants.models import Tenant
    from apps.tenants.services import api_key_create

    vectors = Vectors()
    state_file = data_dir / "bench-memory.json"
    if state_file.exists():
        state = json.loads(state_file.read_text())
        print(f"Reusing the table in {data_dir}", flush=True)
    else:
        print(f"Loading {args.total_rows:,} rows (big tenant {args.big_rows:,}, small tenant 50)", flush=True)
        state = load(args.total_rows, args.big_rows, vectors, shared_index=not args.no_shared_index)
        state_file.write_text(json.dumps(state))
    big, small = state["big"], state["small"]

    print("Semantic query in process (nearest_ids, limit 10), through the shared index", flush=True)
    from django.test import override_settings

    from apps.memory import search, tenant_indexes

    sweep: dict[str, dict[str, float]] = {}
    shared_figures = None
    # As if the big tenant had no index of its own yet (a re-run on kept data has built it).
    with mock.patch.object(search, "has_tenant_index", return_value=False):
        if state["index_seconds"] is not None:
            shared_figures = query_figures(big, Vectors(seed=2), args.queries)
        if args.sweep and shared_figures is not None:
            for factor in args.factors:
                with override_settings(SLOP_MEMORY_OVERFETCH_FACTOR=factor, SLOP_MEMORY_MIN_EF_SEARCH=10):
                    sweep[f"shared index, over-fetch factor {factor:g}"] = query_figures(
                        big, Vectors(seed=5), min(args.queries, 100)
                    )
    if "tenant_index_seconds" not in state:
        print("Building the big tenant's own index (sync_tenant_indexes)", flush=True)
        report = tenant_indexes.sync_tenant_indexes(min_rows=args.tenant_index_min_rows)
        state["tenant_index_seconds"] = round(report.built.get(big, 0.0), 1)
        state_file.write_text(json.dumps(state))
    print("Semantic query in process, the big tenant through its own index", flush=True)
    big_figures = query_figures(big, Vectors(seed=2), args.queries)
    small_figures = query_figures(small, Vectors(seed=3), args.queries)
    naive_small = naive_hnsw_results(small, Vectors(seed=4), 50) if shared_figures is not None else None
    if args.sweep:
        for ef in args.efs:
            with override_settings(SLOP_MEMORY_MIN_EF_SEARCH=ef):
                sweep[f"own index, ef_search {ef}"] = query_figures(
                    big, Vectors(seed=5), min(args.queries, 100)
                )
    figures = (state, shared_figures, big_figures, small_figures, naive_small, sweep)
    if args.only_queries:
        print_query_figures(args, *figures)
        return

    print(f"Embedding cost (local model on {', '.join(args.runtimes)}, taking turns)", flush=True)
    costs = embedding_costs(args.runtimes)

    tenants = {tenant.pk: tenant for tenant in Tenant.objects.filter(pk__in=[big, small])}
    big_key = api_key_create(tenant=tenants[big], scopes="*").plaintext
    small_key = api_key_create(tenant=tenants[small], scopes="*").plaintext
    bench_tenant = Tenant.objects.filter(slug="bench-http").first() or __import__(
        "apps.tenants.services", fromlist=["tenant_create"]
    ).tenant_create(name="Bench HTTP", slug="bench-http")
    key = api_key_create(tenant=bench_tenant, scopes="*").plaintext
    print("The POST /memory/query path in process (Django's stack, test client)", flush=True)
    path_profiles = request_path_profiles(big_key, small_key)
    http = {}
    try:
        for runtime in args.runtimes:
            http[runtime] = serve_and_measure(runtime, key, big_key, small_key, args, data_dir)
    finally:
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)

    print_query_figures(args, *figures)
    for runtime, figures_of in http.items():
        get, post = figures_of["get"], figures_of["post"]  # type: ignore[index]
        print(f"Over HTTP, embeddings on {runtime}:")
        print(
            f"  GET /memory/:key at {args.connections} connections: {get['rps']} req/s"
            f" (p50 {get['p50']}, p99 {get['p99']})"
        )
        print(
            f"  POST /memory at {args.connections} connections (new text each): {post['rps']} req/s"
            f" (p50 {post['p50']}, p99 {post['p99']})"
        )
        for label, (p50, p95) in figures_of["query"].items():  # type: ignore[attr-defined]
            print(
                f"  POST /memory/query, {label} tenant, embedding included:"
                f" p50 {p50:.1f} ms, p95 {p95:.1f} ms; {figures_of['query_cpu'][label]}"  # type: ignore[index]
            )
    for label, path_profile in path_profiles.items():
        print(f"POST /memory/query in the server, {label}: {describe_request(path_profile)}")
    print_embedding_costs(costs)


def print_embedding_costs(costs: dict[str, dict[str, float]]) -> None:
    for runtime, cost in costs.items():
        print(
            f"Embedding (local all-MiniLM-L6-v2, CPU, {runtime}):"
            f" query alone p50 {cost['single_p50']:.1f} ms,"
            f" p95 {cost['single_p95']:.1f} ms (CPU p50 {cost['single_cpu_p50']:.1f} ms,"
            f" p95 {cost['single_cpu_p95']:.1f} ms);"
            f" per text in a batch of 32 {cost['batch32']:.1f} ms,"
            f" of 128 {cost['batch128']:.1f} ms"
        )
    print(f"Load: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f} (1, 5, 15 min)")


def print_query_figures(args, state, shared, big, small, naive_small, sweep) -> None:  # type: ignore[no-untyped-def]
    print()
    shared_build = "none" if state["index_seconds"] is None else f"{state['index_seconds']}s"
    print(
        f"Table: {args.total_rows:,} rows; load (COPY) {state['load_seconds']}s,"
        f" shared HNSW build {shared_build},"
        f" the big tenant's own index {state.get('tenant_index_seconds', '?')}s"
    )
    for label, figures in (
        (f"big tenant ({args.big_rows:,} items), shared index", shared),
        (f"big tenant ({args.big_rows:,} items), own index", big),
        ("small tenant (50 items)", small),
    ):
        if figures is None:
            continue
        print(
            f"  query {label}: p50 {figures['p50']:.1f} ms, p95 {figures['p95']:.1f} ms,"
            f" recall@10 {figures['recall']:.3f},"
            f" fewest results {figures['min_results']}, plan {figures['plans']}"
        )
    if naive_small is not None:
        print(
            f"  a plain filtered HNSW query gives the small tenant {naive_small:.1f} of 10 results on average"
        )
    for label, figures in sweep.items():
        print(
            f"  {label}: big tenant p50 {figures['p50']:.1f} ms, p95 {figures['p95']:.1f} ms,"
            f" recall@10 {figures['recall']:.3f}"
        )


if __name__ == "__main__":
    main()
