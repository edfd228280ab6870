"""What every benchmark needs: free ports, waiting for a server, the management commands, percentiles,
and for the HTTP benches (serving.py, request_cost.py) the platform started as `make run` starts it
and wrk's output read.

Benchmarks run as scripts (`python bench/<area>.py`) and import this as `bench.common`, with the
project root on sys.path.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listening on {port} after {timeout}s")


def manage(env: dict[str, str], *args: str) -> str:
    """Run a management command against the benchmark's data; its stdout, or exit with its stderr."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return done.stdout.strip()


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of `values` (fraction in [0, 1])."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# --- the platform as `make run` starts it (bench/serving.py, bench/request_cost.py) -------------


def platform_env(data_dir: Path) -> dict[str, str]:
    """Production settings (DEBUG off, a SECRET_KEY), embedded PostgreSQL and Redis in `data_dir`,
    the rate limiter on with a limit no run reaches (its Redis call is in the figures)."""
    env = {
        **os.environ,
        "SLOP_DATA_DIR": str(data_dir),
        "SECRET_KEY": "bench-only-secret-key",
        "SLOP_DEBUG": "false",
        "ALLOWED_HOSTS": "*",
        "SLOP_LOG_LEVEL": os.environ.get("SLOP_LOG_LEVEL", "WARNING"),
        "SLOP_RATE_LIMIT_PER_MINUTE": "100000000",
        "SLOP_ANON_RATE_LIMIT_PER_MINUTE": "100000000",
        "DJANGO_SETTINGS_MODULE": "slop_platform.settings",
    }
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    return env


def start_platform(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """`manage.py serve` (embedded PostgreSQL, Redis, Celery, the web server), once it serves."""
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


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                children = [int(c) for c in (task / "children").read_text().split()]
                found.extend(children)
                todo.extend(children)
    return found


def web_processes(root: int) -> list[int]:
    """The web server's processes (granian and its workers), not Celery's, under `manage.py serve`."""
    pids = []
    for pid in _descendants(root):
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            if b"slop_platform.web" in command or b"granian" in command:
                pids.append(pid)
    return pids


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes: what a request costs the server, whatever the
    load of the machine (wall-clock latency on a shared machine mostly measures the others)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def web_server_pid(log: Path) -> int:
    """The pid of the web server that serve started (its line in serve's output)."""
    match = re.search(r"^Web server: pid (\d+)", log.read_text(), re.M)
    if match is None:
        raise SystemExit("no web server pid in serve's output")
    return int(match.group(1))


def redis_url_of(log: Path) -> str:
    """The embedded Redis that serve started: its URL is in the environment of its children."""
    environ = Path(f"/proc/{web_server_pid(log)}/environ").read_bytes().split(b"\0")
    for entry in environ:
        if entry.startswith(b"REDIS_URL="):
            return entry.split(b"=", 1)[1].decode()
    raise SystemExit("the web server has no REDIS_URL")


# --- wrk --------------------------------------------------------------------------------------


@dataclass
class WrkResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of every core since boot, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


def wait_for_quiet(*, busy_below: float = 0.15, window: float = 1.0, timeout: float = 60.0) -> float:
    """Waits until the machine's cores were busy less than `busy_below` over `window` seconds (what
    a started platform, or the jobs a load left queued, still do), at most `timeout`; returns the
    seconds waited. A run measured while the Celery worker still embeds a backlog, or the processes
    still start, measures them too: the first endpoint measured after start-up lost ~20 %."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        busy_before, total_before = _cpu_ticks()
        time.sleep(window)
        busy_after, total_after = _cpu_ticks()
        if (busy_after - busy_before) / max(1, total_after - total_before) < busy_below:
            break
    return time.monotonic() - started


def _ms(text: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(
    url: str,
    *,
    seconds: int,
    connections: int,
    threads: int = 1,
    headers: list[str] | None = None,
    script: Path | None = None,
    timeout: str = "5s",
) -> WrkResult:
    """wrk --latency against `url` (headers as "Name: value"); its figures read from its output."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", timeout]
    for header in headers or []:
        command += ["-H", header]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return WrkResult(
        requests=int(re.search(r"(\d+) requests in", output).group(1)),  # type: ignore[union-attr]
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        p50_ms=_ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1)),  # type: ignore[union-attr]
        p99_ms=_ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1)),  # type: ignore[union-attr]
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
    )


def asgi_scope(method: str, path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """An HTTP scope for driving an ASGI application in process (Host and Content-Length set here)."""
    raw = [(b"host", b"127.0.0.1:8000")]
    raw += [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in headers.items()
        if name.lower() not in ("host", "content-length")
    ]
    if body:
        raw.append((b"content-length", str(len(body)).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def call_asgi(app: Any, scope: dict[str, Any], body: bytes) -> tuple[int, bytes]:
    """One request through an ASGI application in process: its status and body."""
    status: list[int] = []
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(dict(scope), receive, send)
    return status[0], b"".join(chunks)
