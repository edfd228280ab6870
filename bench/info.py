"""Authenticated vs anonymous GET /info over real HTTP, and the in-process cost of auth + scopes.

Starts Daphne on the embedded PostgreSQL in a scratch data folder (DEBUG off), makes a tenant and a
key with the management commands, then drives the server with wrk (Debian package `wrk`).

    .venv/bin/python bench/info.py [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import free_port, manage, wait_for  # noqa: E402


def wrk(url: str, seconds: int, connections: int, headers: list[str]) -> tuple[float, str]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    for header in headers:
        command[1:1] = ["-H", header]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1)  # type: ignore[union-attr]
    if "Non-2xx" in output:
        raise SystemExit(f"errors during the run:\n{output}")
    return rps, p99


def in_process_auth_cost(env: dict[str, str], key: str) -> str:
    code = f"""
import django, os, timeit
django.setup()
from apps.tenants.authentication import principal_for
from apps.tenants.scopes import Action
key = {key!r}
action = Action("memory", "read", "user_preference")
def once():
    principal = principal_for("Bearer " + key, None, "memory.user.read,chat.read")
    assert principal.allows(action)
once()
n = 20000
seconds = timeit.timeit(once, number=n)
print(f"{{seconds / n * 1e6:.1f}}")
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    data_dir = Path(tempfile.mkdtemp(prefix="slop-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "SLOP_DATA_DIR": str(data_dir),
        "SECRET_KEY": "bench-only-secret-key",
        "SLOP_DEBUG": "false",
        "SLOP_EMBEDDINGS_PRELOAD": "false",  # never embeds: keep start-up and RSS as measured
        "ALLOWED_HOSTS": "*",
        "SLOP_LOG_LEVEL": "WARNING",
        "SLOP_RATE_LIMIT_PER_MINUTE": "0",  # measure the request path, not the limiter's 429s
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
    try:
        wait_for(port)
        manage(env, "create_tenant", "Bench", "--slug", "bench")
        key = manage(env, "create_api_key", "bench", "--scopes", "*")
        url = f"http://127.0.0.1:{port}/info"
        wrk(url, 2, args.connections, [])  # warm up
        anonymous = wrk(url, args.seconds, args.connections, [])
        authed = wrk(
            url,
            args.seconds,
            args.connections,
            [f"Authorization: Bearer {key}", "X-SLOP-Scope: memory.user.read"],
        )
        per_call = in_process_auth_cost(env, key)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"GET /info, {args.connections} connections, {args.seconds}s each (Daphne, 1 process)")
    print(f"  anonymous:     {anonymous[0]:8.1f} req/s   p99 {anonymous[1]}")
    print(f"  authenticated: {authed[0]:8.1f} req/s   p99 {authed[1]}")
    print(f"  in-process authentication + X-SLOP-Scope parse + scope check: {per_call} µs per request")


if __name__ == "__main__":
    main()
