"""POST /pay and the Stripe webhook over real HTTP: Daphne + embedded PostgreSQL + localstripe.

Starts localstripe and the server in a scratch data folder, then measures:
- POST /pay one at a time (latency, including the PaymentIntent round trip to localstripe);
- POST /pay from N concurrent clients, each with its own Idempotency-Key (throughput);
- N concurrent clients sending the same Idempotency-Key (must make one charge);
- signed webhook events applied per second, and re-deliveries of events already applied.

    .venv/bin/python bench/pay.py [--requests 200] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import stripe

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import free_port, manage, percentile, wait_for  # noqa: E402

SECRET = "whsec_bench"  # noqa: S105 (a throwaway signing secret for the bench)
LOCALSTRIPE = (
    "import sys; from localstripe import resources, server; "
    "resources.Store.dump_to_disk = lambda self: None; "
    "sys.argv = ['localstripe', '--port', sys.argv[1], '--from-scratch']; server.start()"
)


def signed(payload: bytes) -> str:
    now = int(time.time())
    digest = hmac.new(SECRET.encode(), f"{now}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={now},v1={digest}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="slop-bench-pay-"))
    stripe_port, port = free_port(), free_port()
    env = {
        **os.environ,
        "SLOP_DATA_DIR": str(data_dir),
        "SECRET_KEY": "bench-only-secret-key",
        "SLOP_DEBUG": "false",
        "SLOP_EMBEDDINGS_PRELOAD": "false",  # never embeds: keep start-up and RSS as measured
        "ALLOWED_HOSTS": "*",
        "SLOP_LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "slop_platform.settings",
        "STRIPE_SECRET_KEY": "sk_test_bench",
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "STRIPE_API_BASE": f"http://127.0.0.1:{stripe_port}",
        "STRIPE_LOCALSTRIPE_COMPAT": "true",
    }
    stripe_server = subprocess.Popen(
        [sys.executable, "-c", LOCALSTRIPE, str(stripe_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--no-demo", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(stripe_port)
        wait_for(port)
        manage(env, "create_tenant", "Bench", "--slug", "bench")
        key = manage(env, "create_api_key", "bench", "--scopes", "*")
        base = f"http://127.0.0.1:{port}"
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        body = {"amount": "5.00", "currency": "USD", "payment_method": "pm_card_visa"}

        def pay(index: int, idempotency_key: str | None = None) -> tuple[float, str]:
            started = time.perf_counter()
            headers = {"Idempotency-Key": idempotency_key or f"bench-{index}"}
            response = client.post("/pay", json=body, headers=headers)
            if response.status_code != 200 or response.json()["status"] != "success":
                raise SystemExit(f"POST /pay failed: {response.status_code} {response.text}")
            return time.perf_counter() - started, str(response.json()["transaction_id"])

        for index in range(10):
            pay(-1 - index)  # warm up
        sequential = [pay(index)[0] for index in range(args.requests)]

        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(pay, range(args.requests, 2 * args.requests)))
        concurrent_rps = args.requests / (time.perf_counter() - started)

        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            same_key = list(pool.map(lambda i: pay(i, "bench-same-key"), range(args.concurrency)))
        same_key_seconds = time.perf_counter() - started
        same_ids = {tx for _, tx in same_key}
        sdk = stripe.StripeClient("sk_test_bench", base_addresses={"api": env["STRIPE_API_BASE"]})
        intents = sdk.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()
        charges = sum(
            1 for i in intents if i.to_dict().get("metadata", {}).get("slop_transaction_id") in same_ids
        )
        charged_once = len(same_ids) == 1 and charges == 1
        listed = client.get("/pay", params={"limit": 200}).json()["payments"]

        payments = [p["transaction_id"] for p in listed[: args.requests]]
        events = [
            json.dumps(
                {
                    "id": f"evt_bench_{index}",
                    "type": "payment_intent.processing",
                    "created": 1,
                    "data": {
                        "object": {
                            "id": f"pi_none_{index}",
                            "status": "processing",
                            "metadata": {"slop_transaction_id": tx},
                        }
                    },
                }
            ).encode()
            for index, tx in enumerate(payments)
        ]

        stripe_side = httpx.Client(base_url=base, timeout=60)  # Stripe's sender, no API key

        def deliver(payload: bytes) -> None:
            response = stripe_side.post(
                "/pay/webhook",
                content=payload,
                headers={"Stripe-Signature": signed(payload), "Content-Type": "application/json"},
            )
            if response.status_code != 200:
                raise SystemExit(f"webhook failed: {response.status_code} {response.text}")

        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(deliver, events))
        webhook_rps = len(events) / (time.perf_counter() - started)
        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(deliver, events))
        duplicate_rps = len(events) / (time.perf_counter() - started)
    finally:
        server.terminate()
        server.wait(timeout=30)
        stripe_server.terminate()
        stripe_server.wait(timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)

    ms = [s * 1000 for s in sequential]
    print("POST /pay through Daphne (1 process) to localstripe, embedded PostgreSQL")
    p50, p95, p99 = statistics.median(ms), percentile(ms, 0.95), percentile(ms, 0.99)
    print(f"  sequential ({args.requests}): p50 {p50:.1f} ms  p95 {p95:.1f} ms  p99 {p99:.1f} ms")
    print(f"  {args.concurrency} concurrent clients, distinct keys: {concurrent_rps:.1f} payments/s")
    same = f"{same_key_seconds * 1000:.0f} ms for all"
    print(f"  {args.concurrency} concurrent clients, one key: {same} (one charge: {charged_once})")
    print(f"  webhook events applied: {webhook_rps:.1f}/s; re-deliveries acknowledged: {duplicate_rps:.1f}/s")


if __name__ == "__main__":
    main()
