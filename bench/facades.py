"""The latency the OpenAI door adds over the direct SLOP endpoint: POST /v1/chat/completions against
POST /chat, both with the echo model, non-streaming, one request at a time, interleaved so both see
the same load. Prints p50/p90 of each and the difference, with the machine's load (`uptime`).

Starts Daphne (`manage.py serve`, one process, embedded PostgreSQL in a scratch folder).

    .venv/bin/python bench/facades.py [--samples 300]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import free_port, manage, percentile, wait_for  # noqa: E402

MESSAGES = [{"role": "user", "content": "hello there, how are you today"}]


def timed(client: httpx.Client, path: str, body: dict[str, object]) -> float:
    started = time.perf_counter()
    response = client.post(path, json=body)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{path} answered {response.status_code}: {response.text}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="slop-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "SLOP_DATA_DIR": str(data_dir),
        "SECRET_KEY": "bench-only-secret-key",
        "SLOP_DEBUG": "false",
        "SLOP_EMBEDDINGS_PRELOAD": "false",
        "ALLOWED_HOSTS": "*",
        "SLOP_LOG_LEVEL": "WARNING",
        "SLOP_RATE_LIMIT_PER_MINUTE": "0",
        "SLOP_ANON_RATE_LIMIT_PER_MINUTE": "0",
        "DJANGO_SETTINGS_MODULE": "slop_platform.settings",
    }
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--no-demo", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    direct: list[float] = []
    door: list[float] = []
    try:
        wait_for(port)
        manage(env, "create_tenant", "Bench", "--slug", "bench")
        key = manage(env, "create_api_key", "bench", "--scopes", "*")
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as client:
            chat = {"model": "echo", "messages": MESSAGES}
            for _ in range(20):  # warm up both paths (connections, snapshots, imports)
                timed(client, "/chat", chat)
                timed(client, "/v1/chat/completions", chat)
            for _ in range(args.samples):
                direct.append(timed(client, "/chat", chat))
                door.append(timed(client, "/v1/chat/completions", chat))
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()

    def ms(values: list[float], fraction: float) -> float:
        return percentile(values, fraction) * 1000

    added = [(b - a) * 1000 for a, b in zip(direct, door, strict=True)]
    print(f"echo, non-streaming, {args.samples} interleaved pairs, one at a time (Daphne, 1 process)")
    print(f"  POST /chat:                p50 {ms(direct, 0.5):6.2f} ms   p90 {ms(direct, 0.9):6.2f} ms")
    print(f"  POST /v1/chat/completions: p50 {ms(door, 0.5):6.2f} ms   p90 {ms(door, 0.9):6.2f} ms")
    print(
        f"  added by the door: p50 difference {ms(door, 0.5) - ms(direct, 0.5):+.2f} ms, "
        f"median of pairwise differences {statistics.median(added):+.2f} ms (target < 2 ms)"
    )
    print(f"  load: {load}")


if __name__ == "__main__":
    main()
