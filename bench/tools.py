"""Tools: calculator throughput over real HTTP, and job enqueue-to-start latency on a real worker.

Starts its own redis-server, Daphne (`manage.py serve`) on the embedded PostgreSQL in a scratch
data folder with REDIS_URL set (so jobs go through Redis to Celery), and one Celery worker
(prefork, concurrency 1) on the same database. Then:
- POST /tools/calculator {"expression": "15 * 7"} with wrk at --connections connections;
- --jobs sequential POST /tools/calculator?async=true calls; each job's started_at - created_at
  (both stamped by the database clock's host) is its enqueue-to-start latency.

    .venv/bin/python bench/tools.py [--seconds 10] [--connections 32] [--jobs 200]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import free_port, manage, percentile, wait_for  # noqa: E402


def wrk_post(
    url: str, body: str, key: str, seconds: int, connections: int, workdir: Path
) -> tuple[float, str, str]:
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{body}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
    )
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output:
        raise SystemExit(f"errors during the run:\n{output}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+(\S+)", output).group(1)  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+(\S+)", output).group(1)  # type: ignore[union-attr]
    return rps, p50, p99


def in_process_call_cost(env: dict[str, str], key: str) -> str:
    """Microseconds per tool_call("calculator") in one process: the tools code without HTTP."""
    code = f"""
import django, timeit
django.setup()
from apps.tenants.authentication import principal_for
from apps.tools.services import tool_call
principal = principal_for("Bearer {key}", None, "tools.calculator.execute")
parameters = {{"expression": "15 * 7"}}
def once():
    assert tool_call(principal=principal, tool_id="calculator", parameters=parameters) == {{"result": 105}}
once()
n = 2000
print(f"{{timeit.timeit(once, number=n) / n * 1e6:.0f}}")
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**env, "SLOP_CELERY_EAGER": "true"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def job_latencies(base_url: str, key: str, count: int) -> list[float]:
    latencies: list[float] = []
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        for index in range(count + 5):
            answer = client.post("/tools/calculator?async=true&wait=10", json={"expression": f"{index} * 7"})
            answer.raise_for_status()
            job = client.get(answer.json()["status_url"]).json()
            if job["status"] != "succeeded":
                raise SystemExit(f"job did not succeed: {job}")
            if index >= 5:  # the first few warm the worker up
                latencies.append(
                    (parse_time(job["started_at"]) - parse_time(job["created_at"])).total_seconds()
                )
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--jobs", type=int, default=200)
    args = parser.parse_args()
    for binary in ("wrk", "redis-server"):
        if shutil.which(binary) is None:
            raise SystemExit(f"{binary} is needed (apt-get install {binary})")
    workdir = Path(tempfile.mkdtemp(prefix="slop-bench-tools-"))
    redis_port, port = free_port(), free_port()
    env = {
        **os.environ,
        "SLOP_DATA_DIR": str(workdir / "data"),
        "SECRET_KEY": "bench-only-secret-key",
        "SLOP_DEBUG": "false",
        "ALLOWED_HOSTS": "*",
        "SLOP_LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "slop_platform.settings",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
    }
    env.pop("DATABASE_URL", None)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(
            subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(redis_port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--dir",
                    str(workdir),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_for(redis_port)
        processes.append(
            subprocess.Popen(
                [sys.executable, "manage.py", "serve", "--no-demo", "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_for(port)
        worker_log = (workdir / "worker.log").open("wb")
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "slop_platform",
                    "worker",
                    "--pool=prefork",
                    "--concurrency=1",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel=WARNING",
                ],
                cwd=ROOT,
                env=env,
                stdout=worker_log,
                stderr=subprocess.STDOUT,
            )
        )
        manage(env, "create_tenant", "Bench", "--slug", "bench")
        key = manage(env, "create_api_key", "bench", "--scopes", "*")
        url = f"http://127.0.0.1:{port}/tools/calculator"
        body = '{"expression": "15 * 7"}'
        wrk_post(url, body, key, 2, args.connections, workdir)  # warm up
        rps, p50, p99 = wrk_post(url, body, key, args.seconds, args.connections, workdir)
        latencies = job_latencies(f"http://127.0.0.1:{port}", key, args.jobs)
        per_call = in_process_call_cost(env, key)
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"POST /tools/calculator, {args.connections} connections, {args.seconds}s (Daphne, 1 process)")
    print(f"  {rps:8.1f} req/s   p50 {p50}   p99 {p99}")
    print(f"  in-process tool_call (one indexed lookup, scope, schema, evaluate): {per_call} µs per call")
    print(f"Job enqueue-to-start latency, {len(latencies)} sequential jobs, 1 Celery worker, Redis broker")
    print(
        f"  p50 {percentile(latencies, 0.5) * 1000:.1f} ms   p95 {percentile(latencies, 0.95) * 1000:.1f} ms"
        f"   mean {statistics.mean(latencies) * 1000:.1f} ms   max {max(latencies) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
