"""The cost of metrics, JSON request logs and traces: throughput with all of it on vs all of it off.

Starts the platform the way `make run` does (make -o .venv/.installed run PORT=...), in a scratch
data folder, alternately with observability off (SLOP_METRICS=false, SLOP_REQUEST_LOG=false,
plain logs, no tracing) and on (metrics, a JSON line per request, every request traced and
exported by OTLP/HTTP to a local sink this script runs), and drives each with wrk (Debian package
`wrk`): authenticated GET /memory/:key and GET /info. Alternating rounds spread the machine's
other load over both modes; the load average is printed with the figures.

    .venv/bin/python bench/observability.py [--rounds 2] [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import http.server
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import free_port, wait_for  # noqa: E402

MODES = {
    "off": {"SLOP_METRICS": "false", "SLOP_REQUEST_LOG": "false", "SLOP_LOG_FORMAT": "plain"},
    "on": {"SLOP_METRICS": "true", "SLOP_REQUEST_LOG": "true", "SLOP_LOG_FORMAT": "json"},
}


class OtlpSink(http.server.BaseHTTPRequestHandler):
    """Takes OTLP/HTTP exports (POST /v1/traces, protobuf) and counts them: the collector's side."""

    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        OtlpSink.received += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def wrk(url: str, seconds: int, connections: int, key: str) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
               "-H", f"Authorization: Bearer {key}", url]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]

    def latency(percent: str) -> float:
        match = re.search(rf"\s{percent}%\s+([\d.]+)(us|ms|s)\b", output)
        assert match, output
        return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    non2xx = float(errors.group(1)) if errors else 0.0
    return {"rps": rate, "p50": latency("50"), "p99": latency("99"), "non2xx": non2xx}


def report(round_number: int, mode: str, path: str, figures: dict[str, float]) -> None:
    print(
        f"round {round_number} {mode:3} GET {path:14} {figures['rps']:8.1f} req/s "
        f"p50 {figures['p50']:6.2f} ms p99 {figures['p99']:7.2f} ms "
        f"non-2xx {int(figures['non2xx'])}  load {os.getloadavg()[0]:.2f}",
        flush=True,
    )


def start(data_dir: Path, port: int, mode: str, sink_port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SLOP_DATA_DIR": str(data_dir),
        "SLOP_EMBEDDINGS_PRELOAD": "false",
        "SLOP_RATE_LIMIT_PER_MINUTE": "0",
        **MODES[mode],
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    if mode == "on":
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{sink_port}"
    process = subprocess.Popen(
        ["make", "-s", "-o", ".venv/.installed", "run", f"PORT={port}"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while "Serving on" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"make run did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)
    wait_for(port)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")

    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), OtlpSink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    port = args.port or free_port()
    scratch = Path(tempfile.mkdtemp(prefix="slop-bench-observability-"))
    results: dict[str, dict[str, list[dict[str, float]]]] = {mode: {} for mode in MODES}
    try:
        for round_number in range(args.rounds):
            for mode in ("off", "on") if round_number % 2 == 0 else ("on", "off"):
                log = scratch / f"run-{round_number}-{mode}.log"
                process = start(scratch / "data", port, mode, sink.server_address[1], log)
                try:
                    key = (scratch / "data" / "demo_api_key").read_text().strip()
                    import httpx

                    base = f"http://127.0.0.1:{port}"
                    headers = {"Authorization": f"Bearer {key}"}
                    stored = httpx.post(f"{base}/memory", json={"key": "bench", "value": {"n": 1}},
                                        headers=headers, timeout=120)  # fmt: skip
                    assert stored.status_code == 200, stored.text
                    for path in ("/memory/bench", "/info"):
                        httpx.get(base + path, headers=headers, timeout=30)  # warm
                        figures = wrk(base + path, args.seconds, args.connections, key)
                        results[mode].setdefault(path, []).append(figures)
                        report(round_number, mode, path, figures)
                finally:
                    stop(process)
    finally:
        sink.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"\n{args.rounds} rounds x {args.seconds}s, wrk -t2 -c{args.connections}; "
          f"OTLP exports received: {OtlpSink.received}; load now {os.getloadavg()}")  # fmt: skip
    for path in results["off"]:
        off = sum(run["rps"] for run in results["off"][path]) / len(results["off"][path])
        on = sum(run["rps"] for run in results["on"][path]) / len(results["on"][path])
        cost = 100 * (off - on) / off
        print(f"GET {path:14} off {off:8.1f} req/s   on {on:8.1f} req/s   cost {cost:5.1f}%")


if __name__ == "__main__":
    main()
