"""The latency each door adds over the direct SLOP endpoint, one request at a time, interleaved so
both see the same load. Prints p50/p90 of each, the difference, and the machine's load (`uptime`).

- OpenAI: POST /v1/chat/completions against POST /chat, the echo model, non-streaming.
- MCP: `tools/call calculator` at /mcp (protocol 2026-07-28, one self-contained POST: the request
  the SDK's own client sends, captured once and replayed) against POST /tools/calculator; and
  `tools/list` against GET /tools.

Starts the web server (`manage.py serve`: granian, embedded PostgreSQL in a scratch folder).

`--in-process` (MCP only) then drives the same requests through the web process's ASGI application
(slop_platform.asgi) in a child Python process on the same database and Redis, and prints the CPU-µs
per request (time.process_time: every thread of the process), which the machine's load barely
changes; `--profile` adds cProfile's top functions of the MCP tools/call.

    .venv/bin/python bench/facades.py [--samples 300] [--door openai|mcp|both]
    .venv/bin/python bench/facades.py --door mcp --in-process [--requests 2000] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    asgi_scope,
    call_asgi,
    cpu_seconds,
    free_port,
    manage,
    percentile,
    wait_for,
    web_processes,
)

MESSAGES = [{"role": "user", "content": "hello there, how are you today"}]
EXPRESSION = {"expression": "15 * 7"}


def timed(send: Callable[[], httpx.Response], what: str) -> float:
    started = time.perf_counter()
    response = send()
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{what} answered {response.status_code}: {response.text}")
    return elapsed


def captured_mcp_requests(base_url: str, key: str) -> dict[str, tuple[dict[str, str], bytes]]:
    """What the SDK's client sends for tools/list and tools/call (headers and body), to replay."""
    import httpx2
    from mcp.client.client import Client
    from mcp.client.streamable_http import streamable_http_client

    seen: dict[str, tuple[dict[str, str], bytes]] = {}

    async def keep(request: httpx2.Request) -> None:
        if request.method == "POST":
            body = request.read()
            method = json.loads(body).get("method", "")
            seen[method] = (dict(request.headers), body)

    async def run() -> None:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, event_hooks={"request": [keep]})
        async with http, Client(streamable_http_client(f"{base_url}/mcp", http_client=http)) as client:
            await client.list_tools()
            result = await client.call_tool("calculator", EXPRESSION)
            if result.is_error or result.structured_content != {"result": 105}:
                raise SystemExit(f"tools/call answered {result}")
            print(f"  (the SDK's client negotiated protocol {client.protocol_version})")

    asyncio.run(run())
    return seen


def _mcp_check(response: httpx.Response) -> httpx.Response:
    if response.status_code == 200:
        text = response.text
        payload = json.loads(text) if text.startswith("{") else json.loads(text.split("data: ", 1)[1])
        if "error" in payload or payload.get("result", {}).get("isError"):
            raise SystemExit(f"/mcp answered {text}")
    return response


CPU: dict[tuple[str, str], tuple[float, float]] = {}  # names -> server CPU ms per request (direct, door)
PIDS: list[int] = []


def pairs(
    samples: int,
    direct: Callable[[], httpx.Response],
    door: Callable[[], httpx.Response],
    names: tuple[str, str],
) -> tuple[list[float], list[float]]:
    for _ in range(20):  # warm up both paths (connections, snapshots, imports)
        timed(direct, names[0])
        timed(door, names[1])
    first: list[float] = []
    second: list[float] = []
    for _ in range(samples):
        first.append(timed(direct, names[0]))
        second.append(timed(door, names[1]))
    # The server's CPU per request, in alternating blocks so both see the same conditions.
    cpu = [0.0, 0.0]
    block = 25
    rounds = max(1, samples // block)
    for _ in range(rounds):
        for index, send in enumerate((direct, door)):
            before = cpu_seconds(PIDS)
            for _ in range(block):
                timed(send, names[index])
            cpu[index] += cpu_seconds(PIDS) - before
    CPU[names] = (cpu[0] * 1000 / (rounds * block), cpu[1] * 1000 / (rounds * block))
    return first, second


def report(names: tuple[str, str], direct: list[float], door: list[float]) -> None:
    def ms(values: list[float], fraction: float) -> float:
        return percentile(values, fraction) * 1000

    added = [(b - a) * 1000 for a, b in zip(direct, door, strict=True)]
    for name, values in zip(names, (direct, door), strict=True):
        print(f"  {name:30s} p50 {ms(values, 0.5):6.2f} ms   p90 {ms(values, 0.9):6.2f} ms")
    print(
        f"  added by the door: p50 difference {ms(door, 0.5) - ms(direct, 0.5):+.2f} ms, "
        f"median of pairwise differences {statistics.median(added):+.2f} ms (target < 2 ms)"
    )
    if names in CPU:
        direct_cpu, door_cpu = CPU[names]
        print(
            f"  server CPU per request: {direct_cpu:.2f} ms direct, {door_cpu:.2f} ms by the door "
            f"({door_cpu - direct_cpu:+.2f} ms; the load-independent figure)"
        )


# --- in process: CPU-µs per request through the ASGI application --------------------------------


def in_process_child(plan_file: str, requests: int, with_profile: bool) -> None:
    """Runs in a child process: the requests of `plan_file` through slop_platform.asgi.application."""
    import django

    django.setup(set_prefix=False)
    import slop_platform.asgi as platform_asgi

    plan = json.loads(Path(plan_file).read_text())
    app = platform_asgi.application
    loop = asyncio.new_event_loop()
    cases = [
        (name, asgi_scope(method, path, headers, body.encode()), body.encode())
        for name, method, path, headers, body in plan["cases"]
    ]

    def run(scope: dict[str, Any], body: bytes, name: str) -> None:
        status, data = loop.run_until_complete(call_asgi(app, scope, body))
        if status != 200 or b'"isError":true' in data or b'"error"' in data[:200]:
            raise SystemExit(f"{name} answered {status}: {data[:300]!r}")

    costs: dict[str, float] = {}
    for _ in range(max(50, requests // 10)):  # warm up every path (connections, snapshots, imports)
        for name, scope, body in cases:
            run(scope, body, name)
    rounds = 10
    spent = dict.fromkeys((name for name, _, _ in cases), 0.0)
    for _ in range(rounds):  # alternating blocks: all cases see the same conditions
        for name, scope, body in cases:
            started = time.process_time()
            for _ in range(max(1, requests // rounds)):
                run(scope, body, name)
            spent[name] += time.process_time() - started
    for name in spent:
        costs[name] = spent[name] / (rounds * max(1, requests // rounds)) * 1e6
    print(f"in process (slop_platform.asgi.application), CPU µs per request, {requests} requests each:")
    for name, cost in costs.items():
        print(f"  {name:30s} {cost:8.0f}")
    for direct, door in plan["pairs"]:
        print(f"  added by the door, {door}: {costs[door] - costs[direct]:+.0f} µs (target < 2000)")
    if with_profile:
        import cProfile
        import pstats

        name, scope, body = next(case for case in cases if case[0] == plan["pairs"][0][1])
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(requests):
            run(scope, body, name)
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(40)


def in_process(env: dict[str, str], log: Path, base_url: str, key: str, args: argparse.Namespace) -> None:
    from bench.serving import redis_url_of

    seen = captured_mcp_requests(base_url, key)
    auth = {"Authorization": f"Bearer {key}"}
    json_auth = {**auth, "Content-Type": "application/json"}
    call_headers, call_body = seen["tools/call"]
    list_headers, list_body = seen["tools/list"]
    plan = {
        "cases": [
            ("POST /tools/calculator", "POST", "/tools/calculator", json_auth, json.dumps(EXPRESSION)),
            ("MCP tools/call calculator", "POST", "/mcp", call_headers, call_body.decode()),
            ("GET /tools", "GET", "/tools", auth, ""),
            ("MCP tools/list", "POST", "/mcp", list_headers, list_body.decode()),
        ],
        "pairs": [
            ("POST /tools/calculator", "MCP tools/call calculator"),
            ("GET /tools", "MCP tools/list"),
        ],
    }
    plan_file = log.with_name("plan.json")
    plan_file.write_text(json.dumps(plan))
    child_env = {**env, "REDIS_URL": redis_url_of(log), "PROMETHEUS_MULTIPROC_DIR": str(log.with_name("m"))}
    Path(child_env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(exist_ok=True)
    command = [sys.executable, __file__, "--child", str(plan_file), "--requests", str(args.requests)]
    if args.profile:
        command.append("--profile")
    subprocess.run(command, cwd=ROOT, env=child_env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--door", choices=["openai", "mcp", "both"], default="both")
    parser.add_argument("--in-process", action="store_true", help="MCP: CPU-µs per request in process")
    parser.add_argument("--requests", type=int, default=2000, help="with --in-process")
    parser.add_argument("--profile", action="store_true", help="with --in-process: cProfile tools/call")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        in_process_child(args.child, args.requests, args.profile)
        return
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
        "SLOP_WEB_WORKERS": "1",
        "DJANGO_SETTINGS_MODULE": "slop_platform.settings",
    }
    log = data_dir / "serve.log"
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--no-demo", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    results: list[tuple[str, tuple[str, str], list[float], list[float]]] = []
    try:
        wait_for(port, timeout=600)  # a loaded machine starts the server slowly
        PIDS.extend(web_processes(server.pid))
        manage(env, "create_tenant", "Bench", "--slug", "bench")
        key = manage(env, "create_api_key", "bench", "--scopes", "*")
        # Thousands of tool calls: the free plan's monthly tool-call cap would refuse them.
        lift = "from apps.billing.models import Plan; Plan.objects.update(included_tool_calls=None)"
        manage(env, "shell", "-c", lift)
        headers = {"Authorization": f"Bearer {key}"}
        if args.in_process:
            while "Web server: pid" not in log.read_text(errors="replace"):
                time.sleep(0.2)
            in_process(env, log, base_url, key, args)
            return
        with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
            if args.door in ("openai", "both"):
                chat = {"model": "echo", "messages": MESSAGES}
                names = ("POST /chat", "POST /v1/chat/completions")
                direct, door = pairs(
                    args.samples,
                    lambda: client.post("/chat", json=chat),
                    lambda: client.post("/v1/chat/completions", json=chat),
                    names,
                )
                results.append(("OpenAI door: echo, non-streaming", names, direct, door))
            if args.door in ("mcp", "both"):
                seen = captured_mcp_requests(base_url, key)
                call_headers, call_body = seen["tools/call"]
                list_headers, list_body = seen["tools/list"]
                names = ("POST /tools/calculator", "MCP tools/call calculator")
                direct, door = pairs(
                    args.samples,
                    lambda: client.post("/tools/calculator", json=EXPRESSION),
                    lambda: _mcp_check(client.post("/mcp", content=call_body, headers=call_headers)),
                    names,
                )
                results.append(("MCP door: a built-in tool call", names, direct, door))
                names = ("GET /tools", "MCP tools/list")
                direct, door = pairs(
                    args.samples,
                    lambda: client.get("/tools"),
                    lambda: _mcp_check(client.post("/mcp", content=list_body, headers=list_headers)),
                    names,
                )
                results.append(("MCP door: listing the tools", names, direct, door))
    finally:
        server.terminate()
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"{args.samples} interleaved pairs each, one request at a time (granian, 1 worker process)")
    for title, names, direct, door in results:
        print(title)
        report(names, direct, door)
    print(f"  load: {load}")


if __name__ == "__main__":
    main()
