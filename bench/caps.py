"""Plan caps on the hot path: what the memory-item cap costs a new-key POST /memory for a team that
keeps many items, with the counter row (apps/billing/caps.py today) and with the count(*) under an
advisory lock it replaced (reproduced here, statement for statement, as "count").

On a scratch embedded PostgreSQL (pgserver), in this process, one connection: a team with
--items memory items (one INSERT ... SELECT; the trigger counts them) and one with --small-items,
on a plan whose memory-item cap is far away (so the check runs and passes). The shared HNSW index
on the embeddings is dropped first: loading 50,000 vectors through it takes twenty minutes on a
loaded machine, and its cost per insert is the same with either check (bench/memory.py has it).
For each team and each way to check:
- the cap check alone, inside a transaction as the store has it (p50, p90 wall time);
- a whole new-key POST /memory through Django's test client (middleware, auth, the view, the
  upsert), the embedding replaced by a constant vector: the model's cost is the same either way
  and bench/memory.py measures it;
- for both, CPU time per operation: this process's (time.process_time, every thread) plus that
  of the PostgreSQL backend serving the connection (/proc/<pid>/stat; the count is spent there),
  which load on the machine changes little, unlike wall time.

    .venv/bin/python bench/caps.py [--items 50000] [--small-items 1000] [--samples 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.billing import setup_django  # noqa: E402
from bench.common import percentile  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--small-items", type=int, default=1_000)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="slop-bench-caps-"))
    setup_django(data_dir)

    from django.db import connection, transaction
    from django.test import Client

    import apps.memory.services as memory_services
    from apps.billing.accounts import account_for, clear_limits_cache
    from apps.billing.caps import CAPS, cap_exceeded, ensure_room
    from apps.billing.models import Plan
    from apps.core.embeddings import EMBEDDING_DIMENSIONS
    from apps.memory.models import MemoryItem
    from apps.tenants.models import Tenant
    from apps.tenants.services import api_key_create, tenant_create

    def count_ensure_room(tenant: Tenant | int, what: str, adding: int = 1) -> None:
        """The check before the counter: the plan, an advisory lock, then count(*) of the rows."""
        tenant_id = tenant if isinstance(tenant, int) else int(tenant.pk)
        plan = account_for(tenant_id).effective_plan
        limit = getattr(plan, CAPS[what].plan_field)
        if limit is None or adding <= 0:
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                [f"slop.billing.cap:{what}:{tenant_id}"],
            )
        used = MemoryItem.objects.for_tenant(tenant_id).count()
        if used + adding > limit:
            raise cap_exceeded(what=what, limit=int(limit), used=used, adding=adding, plan=plan.slug)

    checks: dict[str, Callable[..., None]] = {"counter": ensure_room, "count": count_ensure_room}
    vector = [1.0 / EMBEDDING_DIMENSIONS**0.5] * EMBEDDING_DIMENSIONS
    memory_services.embed_text = lambda text, *, tenant_id: vector  # type: ignore[assignment]

    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX memory_item_embedding_hnsw")
    plan = Plan.objects.create(slug="bench-capped", name="Capped", included_memory_items=10**9)
    teams: list[tuple[str, Tenant, str]] = []
    for label, items in (("big", args.items), ("small", args.small_items)):
        tenant = tenant_create(name=f"Bench {label}")
        account = account_for(tenant)
        account.plan = plan
        account.save()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 0")  # the load is one long statement
            cursor.execute(
                """
                INSERT INTO memory_memoryitem (tenant_id, created_at, updated_at, key, value,
                    embedding_text, content_hash, embedding_model, embedding)
                SELECT %s, now(), now(), 'item-' || g, '{"n": 1}'::jsonb, 'item', md5(g::text), 'bench',
                    ARRAY(SELECT random() FROM generate_series(1, %s) WHERE g > 0)::real[]::vector
                FROM generate_series(1, %s) AS g
                """,
                [tenant.pk, EMBEDDING_DIMENSIONS, items],
            )
        key = api_key_create(tenant=tenant, scopes="*").plaintext
        teams.append((f"{label} team ({items:,} items)", tenant, key))
    clear_limits_cache()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("SELECT pg_backend_pid()")
        backend = int(cursor.fetchone()[0])

    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"load: {uptime}", flush=True)
    print(f"{args.samples} samples each, one connection, scratch pgserver in {data_dir}", flush=True)

    def measure(label: str, once: Callable[[int], Any]) -> None:
        for n in range(min(30, args.samples)):  # warm: statement plans, caches, the counter row
            once(-1 - n)
        times = []
        cpu_started, db_started = time.process_time(), cpu_seconds(backend)
        for n in range(args.samples):
            started = time.perf_counter()
            once(n)
            times.append((time.perf_counter() - started) * 1000)
        cpu = (time.process_time() - cpu_started) / args.samples * 1e6
        db = (cpu_seconds(backend) - db_started) / args.samples * 1e6
        p50, p90 = statistics.median(times), percentile(times, 0.9)
        print(
            f"  {label:<44} p50 {p50:7.3f} ms  p90 {p90:7.3f} ms  CPU {cpu + db:7.0f} µs"
            f" (python {cpu:.0f}, postgres {db:.0f})",
            flush=True,
        )

    run = 0
    for team_label, tenant, key in teams:
        print(team_label, flush=True)
        client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
        for name, check in checks.items():
            run += 1

            def check_alone(n: int, check: Callable[..., None] = check, tenant: Tenant = tenant) -> None:
                with transaction.atomic():
                    check(tenant, "memory_items")

            def post(
                n: int, check: Callable[..., None] = check, run: int = run, client: Client = client
            ) -> None:
                response = client.post(
                    "/memory", {"key": f"new-{run}-{n}", "value": {"n": n}}, content_type="application/json"
                )
                assert response.status_code == 200, response.content

            memory_services.ensure_room = check  # type: ignore[assignment]
            measure(f"{name}: the cap check alone", check_alone)
            measure(f"{name}: new-key POST /memory", post)
        memory_services.ensure_room = ensure_room  # type: ignore[assignment]


if __name__ == "__main__":
    main()
