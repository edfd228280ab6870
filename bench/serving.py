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
import re
import shutil
import signal
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

from bench.common import free_port, wait_for  # noqa: E402

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


def _ms(text: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, seconds: int, connections: int, headers: list[str], script: Path | None = None) -> Result:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    for header in headers:
        command += ["-H", header]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return Result(rps, p50, p99, errors)


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


def start_platform(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while "Serving on" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the platform did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.5)
    return process


def start_candidate(env: dict[str, str], argv: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    wait_for(port, timeout=180)
    return process


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def redis_url_of(log: Path) -> str:
    """The embedded Redis that serve started: its URL is in the environment of its children."""
    match = re.search(r"^Web server: pid (\d+)", log.read_text(), re.M)
    if match is None:
        raise SystemExit("no web server pid in serve's output")
    environ = Path(f"/proc/{match.group(1)}/environ").read_bytes().split(b"\0")
    for entry in environ:
        if entry.startswith(b"REDIS_URL="):
            return entry.split(b"=", 1)[1].decode()
    raise SystemExit("the web server has no REDIS_URL")


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
    env = {
        **os.environ,
        "SLOP_DATA_DIR": str(scratch / "data"),
        "SECRET_KEY": "bench-only-secret-key",
        "SLOP_DEBUG": "false",
        "ALLOWED_HOSTS": "*",
        "SLOP_LOG_LEVEL": "WARNING",
        # The limiter runs on every request, with a limit no run reaches.
        "SLOP_RATE_LIMIT_PER_MINUTE": "100000000",
        "SLOP_ANON_RATE_LIMIT_PER_MINUTE": "100000000",
        "DJANGO_SETTINGS_MODULE": "slop_platform.settings",
    }
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
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
            print(f"  {target.name:28} {figures}{ratio}")


if __name__ == "__main__":
    main()
