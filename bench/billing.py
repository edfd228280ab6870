"""Billing on the hot path: what metering and quota admission add to one chat exchange and to one tool
call (p50, p90), next to the whole exchange in process (the echo model, no HTTP), so the share is
plain.

On a scratch embedded PostgreSQL (pgserver), in this process, one connection (as one request has):
- chat, billing only: `reserve_tokens` (the admission statement per limited counter) before the
  model, then `meter` (ledger row + counters + release, one statement) in the store's transaction;
  measured with no limit, the plan's limit (the usual case), and plan + key cap + end-user cap;
- tool call, billing only: `reserve_tool_call` + `meter`;
- the whole exchange (`exchange_prepare` + the echo model + `exchange_store`) and the whole
  `tool_call("calculator")`, for scale;
- the SQL statements one exchange and one tool call send (Django's CaptureQueriesContext), and
  which of them are billing's (they touch billing_* tables), so a new round trip shows.

    .venv/bin/python bench/billing.py [--samples 2000] [--profile]

`--profile` also runs the usual case's admission + metering under cProfile and prints where the
time goes (Python's share next to the database's).
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

from bench.common import percentile  # noqa: E402


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
            "SLOP_CELERY_EAGER": "true",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def timed(label: str, samples: int, once: Callable[[], object]) -> float:
    for _ in range(min(50, samples)):  # warm: connection, statement plans, caches
        once()
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        once()
        times.append((time.perf_counter() - started) * 1000)
    p50, p90 = statistics.median(times), percentile(times, 0.9)
    print(f"  {label:<58} p50 {p50:7.3f} ms   p90 {p90:7.3f} ms", flush=True)
    return p50


def count_queries(label: str, once: Callable[[], object]) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    once()  # caches warm, as for every request after a process's first
    with CaptureQueriesContext(connection) as captured:
        once()
    statements = [q["sql"] for q in captured.captured_queries]
    billing = [sql for sql in statements if "billing_" in sql]
    print(f"  {label:<58} {len(statements)} statements, {len(billing)} of them billing's", flush=True)
    for sql in billing:
        print(f"    billing: {sql[:150]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--profile", action="store_true", help="cProfile the usual case's billing path")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="slop-bench-billing-"))
    setup_django(data_dir)

    from django.db import connection, transaction

    from apps.billing.accounts import account_for, clear_limits_cache
    from apps.billing.metering import Kind, Usage, meter
    from apps.billing.models import Plan
    from apps.billing.quotas import estimate_tokens, reserve_tokens, reserve_tool_call
    from apps.chat.api import _complete
    from apps.chat.services import exchange_prepare
    from apps.tenants.authentication import principal_for
    from apps.tenants.services import api_key_create, tenant_create
    from apps.tools.selectors import tool_spec_get
    from apps.tools.services import tool_call

    big = 10**15
    tenant = tenant_create(name="Bench Team")
    unlimited = Plan.objects.create(slug="bench-unlimited", name="Unlimited")
    limited = Plan.objects.create(
        slug="bench-limited", name="Limited", included_tokens=big, included_tool_calls=big
    )
    account = account_for(tenant)
    key = api_key_create(tenant=tenant, scopes="*", monthly_token_cap=big)
    principal = principal_for(f"Bearer {key.plaintext}", None, None)
    assert principal is not None
    texts = ["What is the weather like in Lisbon in May, and what should I pack?"]
    estimate = estimate_tokens(texts, 256)

    def on_plan(plan: Plan, end_user_cap: int | None) -> None:
        account.plan = plan
        account.end_user_monthly_token_cap = end_user_cap
        account.save()
        clear_limits_cache()

    def billing_parts(label: str, admit: Callable[[], Any], record: Callable[[Any], None]) -> float:
        """p50 of admission (its own statement, before the upstream call) plus metering (one
        statement inside the work's transaction, whose BEGIN and COMMIT are the work's own)."""
        times = []
        for n in range(args.samples + 50):
            started = time.perf_counter()
            hold = admit()
            admitted = time.perf_counter()
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1")  # the work's first statement opens the transaction
                before = time.perf_counter()
                record(hold)
                after = time.perf_counter()
            if n >= 50:
                times.append((admitted - started + after - before) * 1000)
        p50, p90 = statistics.median(times), percentile(times, 0.9)
        print(f"  {label:<58} p50 {p50:7.3f} ms   p90 {p90:7.3f} ms", flush=True)
        return p50

    def chat(usage: Usage, key_cap: int | None) -> tuple[Callable[[], Any], Callable[[Any], None]]:
        return (
            lambda: reserve_tokens(usage=usage, estimate=estimate, key_cap=key_cap),
            lambda hold: meter(
                usage=usage, kind=Kind.LLM, model="echo", input_tokens=17, output_tokens=42, hold=hold
            ),
        )

    tenant_id = int(tenant.pk)
    plain = Usage(tenant_id=tenant_id, api_key_id=principal.key_id)
    with_user = Usage(tenant_id=tenant_id, api_key_id=principal.key_id, end_user="user-42", agent="support")
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"load: {uptime}", flush=True)
    print(f"{args.samples} samples each, one connection, scratch pgserver in {data_dir}", flush=True)

    def select_one() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    timed("calibration: one SELECT 1 round trip", args.samples, select_one)

    print("Chat exchange, billing only (admission + metering)", flush=True)
    on_plan(unlimited, None)
    meter_only = billing_parts("no limit: metering alone (ledger + counters)", *chat(plain, None))
    on_plan(limited, None)
    typical = billing_parts("the plan's token limit (the usual case)", *chat(plain, None))
    on_plan(limited, big)
    everything = billing_parts("plan limit + key cap + end-user cap (X-SLOP-User)", *chat(with_user, big))

    if args.profile:
        import cProfile
        import pstats

        on_plan(limited, None)
        admit, record = chat(plain, None)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.samples):
            record(admit())
        profiler.disable()
        print("  cProfile, the usual case's admission + metering (top 12 by own time):", flush=True)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)

    print("Tool call, billing only", flush=True)
    on_plan(limited, None)
    tool_cost = billing_parts(
        "the plan's tool-call limit (admission + metering)",
        lambda: reserve_tool_call(usage=plain),
        lambda hold: meter(usage=plain, kind=Kind.TOOL, tool="calculator", tool_calls=1, hold=hold),
    )

    print("For scale, whole operations in process (billing included)", flush=True)
    body = {"messages": [{"role": "user", "content": texts[0]}], "max_tokens": 256}
    whole_chat = timed(
        "chat exchange: prepare + echo model + store",
        max(200, args.samples // 10),
        lambda: _complete(exchange_prepare(principal=principal, body=body)),
    )
    spec = tool_spec_get(tenant=tenant, tool_id="calculator")
    assert spec is not None
    whole_tool = timed(
        'tool_call("calculator")',
        args.samples,
        lambda: tool_call(principal=principal, spec=spec, parameters={"expression": "15 * 7"}),
    )
    print("Statements per operation (after warm-up; the plan's limit, as the usual case)", flush=True)
    count_queries("chat exchange", lambda: _complete(exchange_prepare(principal=principal, body=body)))
    count_queries(
        'tool_call("calculator")',
        lambda: tool_call(principal=principal, spec=spec, parameters={"expression": "15 * 7"}),
    )
    print(
        f"billing's share: chat {typical:.3f} of {whole_chat:.3f} ms p50 "
        f"({typical / whole_chat:.0%}; {everything:.3f} ms with every cap, {meter_only:.3f} ms metering "
        f"alone); tool call {tool_cost:.3f} of {whole_tool:.3f} ms ({tool_cost / whole_tool:.0%})",
        flush=True,
    )
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"load after: {uptime}", flush=True)


if __name__ == "__main__":
    main()
