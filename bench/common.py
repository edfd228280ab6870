"""What every benchmark needs: free ports, waiting for a server, the management commands, percentiles.

Benchmarks run as scripts (`python bench/<area>.py`) and import this as `bench.common`, with the
project root on sys.path.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

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
