"""CPU time per request, which load on the machine barely changes (wall time does).

Starts the platform the way `make run` does (`manage.py serve`, production settings, the rate
limiter on with a limit no run reaches), then for each endpoint:

(b) **server**: wrk at a few connections for `--seconds`; the CPU seconds the web workers spent
    (utime + stime of every granian process, /proc/<pid>/stat), and PostgreSQL's and Redis's, divided
    by the requests wrk counted;
(a) **in process** (a child Python process with the same settings, database and Redis): the same
    requests `--requests` times through Django's WSGI handler called directly, through the full
    front (apps/core/serving.ServingFront: a2wsgi's thread pool included) and, as the floor, through
    a minimal Django app (no middleware, one view doing the same one query and orjson), measured
    with time.process_time() (every thread of the process).

    .venv/bin/python bench/request_cost.py [--requests 2000] [--seconds 4] [--connections 4]
        [--profile "GET /memory/:key"]   # also print cProfile's top functions for that endpoint

The benches log at WARNING, so no request line is written; with SLOP_LOG_LEVEL=INFO in the
environment (production's default) each request writes its line, as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    asgi_scope,
    call_asgi,
    free_port,
    platform_env,
    redis_url_of,
    run_wrk,
    start_platform,
    stop,
    web_server_pid,
)

MEMORY_BODY = b'{"key":"bench-post","value":{"theme":"dark","n":1}}'


def endpoints(key: str) -> list[tuple[str, str, str, dict[str, str], bytes]]:
    auth = {"Authorization": f"Bearer {key}"}
    json_auth = {**auth, "Content-Type": "application/json"}
    return [
        ("/healthz", "GET", "/healthz", {}, b""),
        ("GET /info anon", "GET", "/info", {}, b""),
        ("GET /info key", "GET", "/info", auth, b""),
        ("GET /memory/:key", "GET", "/memory/k1", auth, b""),
        ("POST /memory", "POST", "/memory", json_auth, MEMORY_BODY),
    ]


# --- (b) the real server ----------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").iterdir():
            children = (task / "children").read_text().split()
            for child in children:
                found.append(int(child))
                pending.append(int(child))
    return found


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def groups(serve_pid: int, web_pid: int) -> dict[str, list[int]]:
    """The processes whose CPU time counts: web (granian and its workers), postgres, redis."""
    web = [web_pid, *descendants(web_pid)]
    everything = descendants(serve_pid)
    postgres = [pid for pid in everything if "postgres" in process_name(pid)]
    # pgserver may run the postmaster outside serve's tree: find it by its data folder.
    redis = [pid for pid in everything if "redis" in process_name(pid)]
    return {"web": web, "postgres": postgres, "redis": redis}


def all_postgres(data_dir: Path) -> list[int]:
    pid = int((data_dir / "postgres" / "postmaster.pid").read_text().split("\n", 1)[0])
    return [pid, *descendants(pid)]


def sample(group: dict[str, list[int]]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for name, pids in group.items():
        total = 0.0
        for pid in pids:
            with contextlib.suppress(OSError):  # a process that ended meanwhile
                total += cpu_seconds(pid)
        totals[name] = total
    return totals


def wrk_requests(
    url: str, seconds: int, connections: int, headers: dict[str, str], script: Path | None
) -> int:
    done = run_wrk(
        url,
        seconds=seconds,
        connections=connections,
        headers=[f"{name}: {value}" for name, value in headers.items()],
        script=script,
    )
    if done.non_2xx:
        raise SystemExit(f"{url}: {done.non_2xx} non-2xx responses")
    return done.requests


POST_LUA = """
wrk.method = "POST"
wrk.body = '{body}'
"""


def server_costs(args: argparse.Namespace, data_dir: Path, serve_pid: int, web_pid: int, port: int) -> None:
    key = (data_dir / "demo_api_key").read_text().strip()
    group = groups(serve_pid, web_pid)
    group["postgres"] = all_postgres(data_dir)
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(POST_LUA.format(body=MEMORY_BODY.decode()))
    print(f"\n(b) server: wrk -t1 -c{args.connections} -d{args.seconds}s; CPU µs per request")
    print(f"  {'endpoint':20} {'web':>8} {'postgres':>9} {'redis':>7} {'requests':>9}")
    for label, method, path, headers, _body in endpoints(key):
        run_script = script if method == "POST" else None
        url = f"http://127.0.0.1:{port}{path}"
        group["web"] = [web_pid, *descendants(web_pid)]  # a respawned worker is counted too
        wrk_requests(url, 1, args.connections, headers, run_script)  # warm-up
        before = sample(group)
        count = wrk_requests(url, args.seconds, args.connections, headers, run_script)
        after = sample(group)
        cost = {name: (after[name] - before[name]) / count * 1e6 for name in before}
        print(
            f"  {label:20} {cost['web']:8.0f} {cost['postgres']:9.0f} {cost['redis']:7.0f} {count:9d}",
            flush=True,
        )
    script.unlink()


# --- (a) in process ---------------------------------------------------------------------------


def environ_for(method: str, path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in headers.items():
        if name == "Content-Type":
            environ["CONTENT_TYPE"] = value
        else:
            environ["HTTP_" + name.upper().replace("-", "_")] = value
    environ["CONTENT_LENGTH"] = str(len(body))
    environ["_body"] = body
    return environ


def call_wsgi(app: Callable[..., Any], environ: dict[str, Any]) -> int:
    environ = dict(environ)
    environ["wsgi.input"] = io.BytesIO(environ.pop("_body"))
    status: list[str] = []

    def start_response(line: str, headers: list[Any], exc_info: Any = None) -> None:
        status.append(line)

    result = app(environ, start_response)
    for _ in result:
        pass
    if hasattr(result, "close"):
        result.close()
    return int(status[0].split()[0])


def in_process(args: argparse.Namespace) -> None:
    import django

    django.setup(set_prefix=False)
    from django.test.utils import override_settings

    from apps.core.asgi import JsonWSGIHandler

    key = Path(os.environ["SLOP_DATA_DIR"], "demo_api_key").read_text().strip()
    handler = JsonWSGIHandler()
    import slop_platform.asgi as platform_asgi

    front = platform_asgi.application
    with override_settings(ROOT_URLCONF="bench.layouts.minimal", MIDDLEWARE=[]):
        minimal = JsonWSGIHandler()
    loop = asyncio.new_event_loop()
    n = args.requests

    def timed(run: Callable[[], int]) -> float:
        for _ in range(max(20, n // 10)):  # warm-up
            run()
        started = time.process_time()
        for _ in range(n):
            status = run()
            if status >= 300:
                raise SystemExit(f"status {status}")
        return (time.process_time() - started) / n * 1e6

    print(f"\n(a) in process: CPU µs per request ({n} requests each, time.process_time)")
    print(f"  {'endpoint':20} {'WSGI handler':>13} {'full front':>11} {'minimal view':>13}")
    for label, method, path, headers, body in endpoints(key):
        environ = environ_for(method, path, headers, body)
        scope = asgi_scope(method, path, headers, body)
        wsgi_cost = timed(lambda environ=environ: call_wsgi(handler, environ))  # type: ignore[misc]
        front_cost = timed(
            lambda scope=scope, body=body: loop.run_until_complete(call_asgi(front, scope, body))[0]  # type: ignore[misc]
        )
        with override_settings(ROOT_URLCONF="bench.layouts.minimal", MIDDLEWARE=[]):
            minimal_cost = timed(lambda environ=environ: call_wsgi(minimal, environ))  # type: ignore[misc]
        print(f"  {label:20} {wsgi_cost:13.0f} {front_cost:11.0f} {minimal_cost:13.0f}", flush=True)
        if args.profile == label:
            profile(lambda environ=environ: call_wsgi(handler, environ), n)  # type: ignore[misc]
    if args.queries:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        for label, method, path, headers, body in endpoints(key):
            environ = environ_for(method, path, headers, body)
            with CaptureQueriesContext(connection) as captured:
                call_wsgi(handler, environ)
            print(f"  queries {label}: {len(captured)}")
            for query in captured.captured_queries:
                print(f"    {query['sql'][:160]}")


def profile(run: Callable[[], int], n: int) -> None:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        run()
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(30)


# --- driver -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--profile", default="", help="an endpoint label: cProfile it in process")
    parser.add_argument("--queries", action="store_true", help="print each endpoint's SQL")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--skip-server", action="store_true", help="in-process figures only")
    args = parser.parse_args()
    if args.in_process:
        in_process(args)
        return
    scratch = Path(tempfile.mkdtemp(prefix="slop-bench-cost-"))
    data_dir = scratch / "data"
    port = free_port()
    env = platform_env(data_dir)
    log = scratch / "serve.log"
    platform = start_platform(env, port, log)
    try:
        web_pid = web_server_pid(log)
        key = (data_dir / "demo_api_key").read_text().strip()
        import urllib.request

        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/memory",
            data=json.dumps({"key": "k1", "value": {"theme": "dark"}}).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
        urllib.request.urlopen(request, timeout=60).close()  # noqa: S310 - loopback
        print(f"load before: {Path('/proc/loadavg').read_text().strip()}", flush=True)
        if not args.skip_server:
            server_costs(args, data_dir, platform.pid, web_pid, port)
        child_env = {**env, "REDIS_URL": redis_url_of(log), "SLOP_METRICS": env.get("SLOP_METRICS", "true")}
        # The child writes metrics to a folder of its own, like a worker.
        child_env["PROMETHEUS_MULTIPROC_DIR"] = str(scratch / "child-metrics")
        command = [sys.executable, __file__, "--in-process", "--requests", str(args.requests)]
        if args.profile:
            command += ["--profile", args.profile]
        if args.queries:
            command.append("--queries")
        subprocess.run(command, cwd=ROOT, env=child_env, check=True)
        print(f"load after: {Path('/proc/loadavg').read_text().strip()}")
    finally:
        stop(platform)


if __name__ == "__main__":
    main()
