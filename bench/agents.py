"""Agents: what the orchestration adds per step over a single chat, and whether a parallel fan-out
finishes in about the slowest branch rather than the sum.

Starts Daphne (`manage.py serve`, one process, embedded PostgreSQL in a scratch folder) and the tests'
OpenAI-compatible model server (real SSE wire format) in this process; creates a tenant with agents
through `manage.py shell`, then times `POST /chat` (non-streaming: the whole run, stored).

    .venv/bin/python bench/agents.py [--samples 100] [--fanout-samples 20] [--upstream-ms 100]

1. Overhead (echo, no model latency): a plain chat, the same through one agent, and a sequential
   run of 4 agents; per step = (sequential of 4 - one agent) / 3, paired per sample.
2. Fan-out of 4 against an upstream that waits `--upstream-ms` before each answer: one agent, a
   parallel run of 4 (concurrency 4) and, for contrast, a sequential run of the same 4.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import free_port, manage, percentile, wait_for  # noqa: E402
from tests.llm.fake_upstreams import start_upstream, stop_upstream  # noqa: E402

AGENTS = """
from apps.agents.models import Agent
from apps.tenants.models import Tenant
tenant = Tenant.objects.get(slug="bench")
for n in range(1, 5):
    Agent.objects.create(tenant=tenant, slug=f"echo{n}", name=f"Echo {n}", tools="none")
    Agent.objects.create(tenant=tenant, slug=f"llm{n}", name=f"LLM {n}", model="fake-gpt", tools="none")
"""


def timed(client: httpx.Client, url: str, key: str, body: dict[str, object]) -> float:
    started = time.perf_counter()
    response = client.post(f"{url}/chat", json=body, headers={"Authorization": f"Bearer {key}"})
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200 or response.json()["message"]["status"] != "complete":
        raise SystemExit(f"platform answered {response.status_code}: {response.text[:300]}")
    return elapsed


def line(label: str, values: list[float]) -> str:
    return f"  {label:<34} p50 {percentile(values, 0.5):7.1f} ms   p95 {percentile(values, 0.95):7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--fanout-samples", type=int, default=20)
    parser.add_argument("--upstream-ms", type=float, default=100.0)
    args = parser.parse_args()
    upstream = start_upstream("openai", "sk-bench")
    data_dir = Path(tempfile.mkdtemp(prefix="slop-bench-agents-"))
    port = free_port()
    env = {
        **os.environ,
        "SLOP_DATA_DIR": str(data_dir),
        "SECRET_KEY": "bench-only-secret-key",
        "SLOP_DEBUG": "false",
        "SLOP_EMBEDDINGS_PRELOAD": "false",  # no pattern here embeds
        "ALLOWED_HOSTS": "*",
        "SLOP_LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "slop_platform.settings",
        "OPENAI_API_KEY": upstream.api_key,
        "SLOP_OPENAI_BASE_URL": upstream.url,
        "SLOP_OPENAI_MODELS": "fake-gpt",
        "SLOP_DEFAULT_MODEL": "echo",
        "SLOP_RATE_LIMIT_PER_MINUTE": "0",
        "SLOP_AGENT_PARALLEL_CONCURRENCY": "4",
    }
    server_log = Path(os.environ.get("BENCH_SERVER_LOG", os.devnull)).open("w")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--no-demo", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=server_log,
    )
    echo4 = [f"echo{n}" for n in range(1, 5)]
    llm4 = [f"llm{n}" for n in range(1, 5)]
    message = [{"content": "hello there, how are you today"}]
    try:
        wait_for(port, timeout=300)  # a loaded machine starts PostgreSQL, Redis and Celery slowly
        manage(env, "create_tenant", "Bench", "--slug", "bench")
        key = manage(env, "create_api_key", "bench", "--scopes", "*")
        manage(env, "shell", "-c", AGENTS)
        url = f"http://127.0.0.1:{port}"
        plain_body = {"messages": message, "model": "echo"}
        single_body = {"messages": message, "agent": "echo1"}
        sequential_body = {"messages": message, "pattern": "sequential", "agents": echo4}
        with httpx.Client(timeout=60) as client:
            for _ in range(10):  # warm up every path
                for body in (plain_body, single_body, sequential_body):
                    timed(client, url, key, body)
            plain, single, sequential = [], [], []
            for _ in range(args.samples):
                plain.append(timed(client, url, key, plain_body))
                single.append(timed(client, url, key, single_body))
                sequential.append(timed(client, url, key, sequential_body))
            upstream.delay_seconds = args.upstream_ms / 1000
            one_llm = {"messages": message, "agent": "llm1"}
            parallel_body = {"messages": message, "pattern": "parallel", "agents": llm4}
            serial_body = {"messages": message, "pattern": "sequential", "agents": llm4}
            for body in (one_llm, parallel_body):
                timed(client, url, key, body)
            llm_single, llm_parallel, llm_serial = [], [], []
            for _ in range(args.fanout_samples):
                llm_single.append(timed(client, url, key, one_llm))
                llm_parallel.append(timed(client, url, key, parallel_body))
                llm_serial.append(timed(client, url, key, serial_body))
        load = Path("/proc/loadavg").read_text().split()[:3]
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        stop_upstream(upstream)
        server_log.close()
        shutil.rmtree(data_dir, ignore_errors=True)
    added_single = [s - p for s, p in zip(single, plain, strict=True)]
    per_step = [(q - s) / 3 for q, s in zip(sequential, single, strict=True)]
    print(f"Load average at the end: {' '.join(load)} (2 cores, shared)")
    print(f"Orchestration overhead, echo, POST /chat, {args.samples} samples each")
    print(line("plain chat:", plain))
    print(line("one agent:", single))
    print(line("sequential of 4 agents:", sequential))
    print(line("one agent, added over plain:", added_single))
    print(line("each further step:", per_step))
    print(f"Fan-out of 4 against a {args.upstream_ms:g} ms upstream, {args.fanout_samples} samples each")
    print(line("one agent:", llm_single))
    print(line("parallel of 4 (concurrency 4):", llm_parallel))
    print(line("sequential of 4 (the sum):", llm_serial))
    ratio = percentile(llm_parallel, 0.5) / percentile(llm_single, 0.5)
    print(f"  parallel / one agent (p50): {ratio:.2f}x   (the sum would be 4x)")


if __name__ == "__main__":
    main()
