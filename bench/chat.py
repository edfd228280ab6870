"""Chat streaming: the time-to-first-token the platform adds over the upstream, and how many
concurrent SSE streams the default process layout sustains (with its memory per stream).

Starts the platform as `make run` does (`manage.py serve`: the web server with SLOP_WEB_WORKERS
processes, Redis, Celery, embedded PostgreSQL in a scratch folder) and a local OpenAI-compatible
model server (the tests' fake, real SSE wire format) in this process. Memory is the resident
size of the web server's processes together.

    .venv/bin/python bench/chat.py [--samples 200] [--streams 500] [--words 40] [--delay-ms 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
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
from slop_platform.healthcheck import answers  # noqa: E402
from tests.llm.fake_upstreams import start_upstream, stop_upstream  # noqa: E402

UNLIMITED_PLAN = """
from apps.billing.accounts import account_for
from apps.billing.models import Plan
from apps.tenants.models import Tenant
plan, _ = Plan.objects.get_or_create(slug="bench-unlimited", defaults={"name": "Bench", "is_public": False})
account = account_for(Tenant.objects.get(slug="bench"))
account.override_plan, account.override_reason = plan, "benchmark"
account.save(update_fields=["override_plan", "override_reason"])
"""


def first_token_direct(client: httpx.Client, upstream_url: str, api_key: str) -> float:
    body = {"model": "fake-gpt", "stream": True, "messages": [{"role": "user", "content": "hello there"}]}
    started = time.perf_counter()
    with client.stream(
        "POST", f"{upstream_url}/chat/completions", json=body, headers={"Authorization": f"Bearer {api_key}"}
    ) as response:
        elapsed = None
        for line in response.iter_lines():  # read to the end, as the platform does
            if elapsed is None and line.startswith("data: {"):
                delta = json.loads(line[6:])["choices"]
                if delta and delta[0]["delta"].get("content"):
                    elapsed = time.perf_counter() - started
    if elapsed is None:
        raise SystemExit("the upstream sent no content")
    return elapsed


def first_token_platform(client: httpx.Client, url: str, key: str) -> float:
    body = {"model": "fake-gpt", "messages": [{"role": "user", "content": "hello there"}]}
    started = time.perf_counter()
    with client.stream(
        "POST", f"{url}/chat/stream", json=body, headers={"Authorization": f"Bearer {key}"}
    ) as response:
        if response.status_code != 200:
            raise SystemExit(f"platform answered {response.status_code}: {response.read()!r}")
        elapsed = None
        for line in response.iter_lines():  # read to the end, so runs do not overlap
            if elapsed is None and line.startswith("data: {") and json.loads(line[6:])["type"] == "content":
                elapsed = time.perf_counter() - started
    if elapsed is None:
        raise SystemExit("the platform sent no content")
    return elapsed


def rss_kib(pid: int) -> int:
    """The resident size of serve's web server processes (granian and its workers), in KiB."""
    import psutil

    total = 0
    for process in psutil.Process(pid).children(recursive=True):
        try:
            if "granian" in " ".join(process.cmdline()):
                total += process.memory_info().rss // 1024
        except psutil.Error:
            continue
    return total


async def concurrent_streams(
    url: str, key: str, streams: int, words: int, pid: int, ramp: float
) -> dict[str, float]:
    text = " ".join(f"w{n}" for n in range(words))
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    outcome: dict[str, float] = {"ok": 0, "errors": 0, "peak_rss": 0.0}
    kinds: dict[str, int] = {}
    started_streams = 0

    open_now = 0
    outcome["peak_open"] = 0

    async def one(client: httpx.AsyncClient, index: int) -> None:
        nonlocal started_streams, open_now
        # Connections arrive over a few seconds (as clients do), not in one burst: Daphne listens
        # with Twisted's backlog of 50, and a burst of hundreds of connects overflows it
        # (TcpExtListenOverflows) and some are reset. In production raise it
        # (`daphne -e tcp:port=8000:backlog=1024`) or put a proxy in front.
        await asyncio.sleep(index * ramp)
        body = {"model": "echo", "messages": [{"content": text}]}
        try:
            async with client.stream(
                "POST", f"{url}/chat/stream", json=body, headers={"Authorization": f"Bearer {key}"}
            ) as response:
                if response.status_code != 200:
                    outcome["errors"] += 1
                    kind = f"HTTP {response.status_code}: {(await response.aread())[:120]!r}"
                    kinds[kind] = kinds.get(kind, 0) + 1
                    return
                started_streams += 1
                open_now += 1
                outcome["peak_open"] = max(outcome["peak_open"], open_now)
                content, done = 0, False
                async for line in response.aiter_lines():
                    if line == "data: [DONE]":
                        done = True
                    elif line.startswith("data: {") and json.loads(line[6:])["type"] == "content":
                        content += 1
                open_now -= 1
                if done and content == words:
                    outcome["ok"] += 1
                else:
                    outcome["errors"] += 1
                    kind = f"stream ended after {content} of {words} words, [DONE]={done}"
                    kinds[kind] = kinds.get(kind, 0) + 1
        except httpx.HTTPError as exc:
            outcome["errors"] += 1
            kinds[type(exc).__name__] = kinds.get(type(exc).__name__, 0) + 1

    async def sample_memory(stop: asyncio.Event) -> None:
        while not stop.is_set():
            outcome["peak_rss"] = max(outcome["peak_rss"], rss_kib(pid))
            await asyncio.sleep(0.2)

    stop = asyncio.Event()
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        sampler = asyncio.create_task(sample_memory(stop))
        began = time.perf_counter()
        await asyncio.gather(*(one(client, index) for index in range(streams)))
        outcome["seconds"] = time.perf_counter() - began
        stop.set()
        await sampler
    for kind, count in sorted(kinds.items()):
        print(f"  error: {count} x {kind}")
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--words", type=int, default=40)
    parser.add_argument("--delay-ms", type=int, default=100, help="echo's pause between words")
    parser.add_argument("--ramp-ms", type=float, default=5.0, help="pause between opening two streams")
    parser.add_argument(
        "--profile", metavar="FILE", help="record the server with py-spy (raw, collapsed stacks) while timing"
    )
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if args.profile and not Path(spy).exists():
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    upstream = start_upstream("openai", "sk-bench")
    data_dir = Path(tempfile.mkdtemp(prefix="slop-bench-chat-"))
    port = free_port()
    env = {
        **os.environ,
        "SLOP_DATA_DIR": str(data_dir),
        "SECRET_KEY": "bench-only-secret-key",
        "SLOP_DEBUG": "false",
        "SLOP_EMBEDDINGS_PRELOAD": "false",  # never embeds: keep start-up and RSS as measured
        "ALLOWED_HOSTS": "*",
        "SLOP_LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "slop_platform.settings",
        "OPENAI_API_KEY": upstream.api_key,
        "SLOP_OPENAI_BASE_URL": upstream.url,
        "SLOP_OPENAI_MODELS": "fake-gpt",
        "SLOP_ECHO_DELAY_MS": str(args.delay_ms),
        "SLOP_RATE_LIMIT_PER_MINUTE": "0",  # measure the request path, not the limiter's 429s
    }
    server_log = Path(os.environ.get("BENCH_SERVER_LOG", os.devnull)).open("w")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--no-demo", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=server_log,
    )
    try:
        wait_for(port)
        while not answers("127.0.0.1", port):  # the port is bound before the workers are ready
            time.sleep(0.2)
        manage(env, "create_tenant", "Bench", "--slug", "bench")
        # The free plan's token allowance would refuse most of 2,000 concurrent streams (each
        # reserves its output allowance): the bench team runs on a plan with no token limit.
        manage(env, "shell", "-c", UNLIMITED_PLAN)
        key = manage(env, "create_api_key", "bench", "--scopes", "*")
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(timeout=30) as client:
            for _ in range(20):  # warm up both paths
                first_token_direct(client, upstream.url, upstream.api_key)
                first_token_platform(client, url, key)
            direct, platform = [], []
            profiler = (
                subprocess.Popen(
                    [spy, "record", "-p", str(server.pid), "-r", "500", "-f", "raw", "-o", args.profile],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                if args.profile
                else None
            )
            for _ in range(args.samples):
                direct.append(first_token_direct(client, upstream.url, upstream.api_key) * 1000)
                platform.append(first_token_platform(client, url, key) * 1000)
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                profiler.wait(timeout=60)
        idle_rss = rss_kib(server.pid)
        streams = asyncio.run(
            concurrent_streams(url, key, args.streams, args.words, server.pid, args.ramp_ms / 1000)
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        stop_upstream(upstream)
        server_log.close()
        shutil.rmtree(data_dir, ignore_errors=True)
    added = [p - d for p, d in zip(platform, direct, strict=True)]

    def line(label: str, values: list[float]) -> str:
        return f"  {label:<22} p50 {percentile(values, 0.5):6.1f} ms   p95 {percentile(values, 0.95):6.1f} ms"

    print(f"Time to first token, {args.samples} sequential requests (OpenAI-compatible upstream, localhost)")
    print(line("upstream directly:", direct))
    print(line("through the platform:", platform))
    print(line("added by the platform:", added) + f"   (mean {statistics.mean(added):.1f} ms)")
    per_stream = (streams["peak_rss"] - idle_rss) / max(1, args.streams)
    print(
        f"{args.streams} SSE streams at once (echo, {args.words} words {args.delay_ms} ms apart), "
        f"{os.environ.get('SLOP_WEB_WORKERS', len(os.sched_getaffinity(0)))} web workers"
    )
    print(
        f"  completed {int(streams['ok'])}, errors {int(streams['errors'])},"
        f" at most {int(streams['peak_open'])} open at once, wall {streams['seconds']:.1f} s"
    )
    print(
        f"  server RSS idle {idle_rss / 1024:.0f} MiB, peak {streams['peak_rss'] / 1024:.0f} MiB,"
        f" {per_stream:.0f} KiB per stream"
    )


if __name__ == "__main__":
    main()
