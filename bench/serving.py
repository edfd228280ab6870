"""The HTTP data plane against the SLOP reference server (Express), side by side in one run.

Starts the platform the way `make run` does (`manage.py serve`: embedded PostgreSQL, Redis, a
Celery worker and beat, the web server with SLOP_WEB_WORKERS processes) on a scratch data folder,
with production settings (DEBUG off, a SECRET_KEY), and the reference server from
../shared/anchors/ref-express (copied to a scratch folder, `npm ci`, its fixed port made a free
one). Then, for each endpoint, it alternates the two under the same wrk load (`--rounds` times
each, `--seconds` per run) and prints requests per second, p50/p99 and the ratio platform/reference:

- `GET /memory/:key`, authenticated (the platform reads PostgreSQL; the reference, a JS object);
- `GET /info` with a key (the reference has no /info: its `GET /tools`, a JSON listing, stands in);
- `POST /memory`: upserts over a set of 100 keys (the platform writes PostgreSQL and embeds the
  text; its embedding cache answers once a key's text has been embedded).

The rate limiter runs (a limit no run reaches), so its Redis call is in the figures.

    .venv/bin/python bench/serving.py [--seconds 5] [--rounds 3] [--connections 32]
        [--layouts]   # also compare the candidate serving layouts (README, "Performance")

`--layouts` starts, beside the platform, each candidate web server on the same database and Redis
and alternates them too: Daphne (one process, the layout before), granian + Django's ASGI handler,
granian + the platform's front (slop_platform.asgi), granian WSGI (no streams: an upper bound).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    free_port,
    platform_env,
    redis_url_of,
    run_wrk,
    start_platform,
    stop,
    wait_for,
    wait_for_quiet,
)

APPLICATION = "slop_platform.asgi:application"
DJANGO_ASGI = "bench.layouts.django_asgi:application"
WSGI = "slop_platform.wsgi:application"
REFERENCE = ROOT.parent / "shared" / "anchors" / "ref-express"
POST_LUA = """
local headers = {}
headers["Content-Type"] = "application/json"
AUTH_HEADERS
local counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
function init(args)
  counter = id * 50
end
request = function()
  counter = counter + 1
  local body = '{"key":"bench-' .. (counter % 100) .. '","value":{"theme":"dark","n":1}}'
  return wrk.format("POST", "/memory", headers, body)
end
"""


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass
class Target:
    name: str
    url: str
    headers: list[str] = field(default_factory=list)
    results: dict[str, list[Result]] = field(default_factory=dict)


def wrk(url: str, seconds: int, connections: int, headers: list[str], script: Path | None = None) -> Result:
    done = run_wrk(url, seconds=seconds, connections=connections, threads=2, headers=headers, script=script)
    return Result(done.rps, done.p50_ms, done.p99_ms, done.errors)


def request(method: str, url: str, headers: dict[str, str], body: dict[str, object] | None = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(  # noqa: S310 - loopback
        url, data=data, method=method, headers={"Content-Type": "application/json", **headers}
    )
    with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310 - loopback
        return int(response.status)


def start_reference(scratch: Path) -> tuple[subprocess.Popen[bytes], int]:
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise SystemExit("node and npm are needed for the reference server")
    folder = scratch / "ref-express"
    shutil.copytree(REFERENCE, folder)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    folder.chmod(0o755)
    port = free_port()
    source = (folder / "slop.js").read_text()
    (folder / "slop.js").write_text(source.replace("3000", str(port)))  # its port, nothing else
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=folder, check=True)
    process = subprocess.Popen(
        ["node", "slop.js"], cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for(port, timeout=60)
    time.sleep(2)  # its own client sequence runs right after it listens
    return process, port


def start_candidate(env: dict[str, str], argv: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    wait_for(port, timeout=180)
    return process


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--layouts", action="store_true", help="also compare the candidate layouts")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    scratch = Path(tempfile.mkdtemp(prefix="slop-bench-serving-"))
    port = free_port()
    env = platform_env(scratch / "data")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        reference, reference_port = start_reference(scratch)
        processes.append(reference)
        platform = start_platform(env, port, scratch / "serve.log")
        processes.append(platform)
        key = (scratch / "data" / "demo_api_key").read_text().strip()
        auth = [f"Authorization: Bearer {key}"]
        targets = [
            Target("reference", f"http://127.0.0.1:{reference_port}"),
            Target("platform", f"http://127.0.0.1:{port}", auth),
        ]
        if args.layouts:
            layout_env = {**env, "REDIS_URL": redis_url_of(scratch / "serve.log")}
            python = sys.executable
            workers = os.environ.get("SLOP_WEB_WORKERS", str(len(os.sched_getaffinity(0))))
            granian = [python, "-m", "granian", "--workers", workers, "--log-level", "warning"]
            threads = ["--blocking-threads", os.environ.get("SLOP_WEB_THREADS", "8")]
            candidates: list[tuple[str, Callable[[int], list[str]]]] = [
                ("daphne (1 process)", lambda p: [python, "-m", "daphne", "-p", str(p), APPLICATION]),
                (
                    "granian + Django ASGI",
                    lambda p: [*granian, "--interface", "asgi", "--port", str(p), DJANGO_ASGI],
                ),
                (
                    "granian WSGI (no streams)",
                    lambda p: [*granian, *threads, "--interface", "wsgi", "--port", str(p), WSGI],
                ),
            ]
            for name, argv in candidates:
                candidate_port = free_port()
                log = scratch / f"{name.split()[0]}-{candidate_port}.log"
                processes.append(start_candidate(layout_env, argv(candidate_port), candidate_port, log))
                targets.append(Target(name, f"http://127.0.0.1:{candidate_port}", auth))
        for target in targets:
            headers = dict(header.split(": ", 1) for header in target.headers)
            request("POST", f"{target.url}/memory", headers, {"key": "k1", "value": {"theme": "dark"}})
        scripts: dict[str, Path] = {}
        for target in targets:
            auth_lua = "".join(
                f'headers["{h.split(": ", 1)[0]}"] = "{h.split(": ", 1)[1]}"\n' for h in target.headers
            )
            scripts[target.name] = scratch / f"post-{len(scripts)}.lua"
            scripts[target.name].write_text(POST_LUA.replace("AUTH_HEADERS", auth_lua))
        endpoints: list[tuple[str, str, bool]] = [
            ("GET /memory/:key", "/memory/k1", False),
            ("GET /info (key; reference: GET /tools)", "/info", False),
            ("POST /memory", "/memory", True),
        ]

        def path_for(target: Target, path: str) -> str:
            return "/tools" if path == "/info" and target is targets[0] else path

        for _, path, post in endpoints:  # warm-up: models, caches, connections, every key embedded
            for target in targets:
                script = scripts[target.name] if post else None
                wrk(
                    target.url + path_for(target, path),
                    6 if post else 2,
                    args.connections,
                    target.headers,
                    script,
                )
        print(f"load before: {Path('/proc/loadavg').read_text().strip()}", flush=True)
        for label, path, post in endpoints:
            waited = wait_for_quiet()  # what start-up and the warm-up left running (Celery's jobs)
            print(f"{label}: the machine was quiet after {waited:.1f} s", flush=True)
            for _ in range(args.rounds):
                for target in targets:
                    script = scripts[target.name] if post else None
                    url = target.url + path_for(target, path)
                    result = wrk(url, args.seconds, args.connections, target.headers, script)
                    target.results.setdefault(label, []).append(result)
        load = Path("/proc/loadavg").read_text().strip()
    finally:
        for process in reversed(processes):
            stop(process)
        shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"\nwrk -t2 -c{args.connections}, {args.rounds} alternating runs of {args.seconds}s per server and "
        f"endpoint; load after: {load}"
    )
    reference_target = targets[0]
    for label, _, _ in endpoints:
        reference_rps = statistics.median(r.rps for r in reference_target.results[label])
        print(f"\n{label}")
        for target in targets:
            results = target.results[label]
            rps = statistics.median(r.rps for r in results)
            p50 = statistics.median(r.p50_ms for r in results)
            p99 = statistics.median(r.p99_ms for r in results)
            errors = sum(r.errors for r in results)
            ratio = "" if target is reference_target else f"  {rps / reference_rps:5.2f}x"
            figures = f"{rps:8.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  errors {errors}"
            runs = " ".join(f"{r.rps:.0f}" for r in results)
            print(f"  {target.name:28} {figures}{ratio}   (runs: {runs})")


if __name__ == "__main__":
    main()
