"""The cost of metrics, JSON request logs and traces: throughput with all of it on vs all of it off.

Starts the platform the way `make run` does (make -o .venv/.installed run PORT=...), in a scratch
data folder, alternately with observability off (SLOP_METRICS=false, SLOP_REQUEST_LOG=false,
plain logs, no tracing), at the production default (metrics and a JSON line per request, no
traces) and all on (the default, and every request traced and exported by OTLP/HTTP to a local
sink this script runs), and drives each with wrk (Debian package
`wrk`): authenticated GET /memory/:key and GET /info. Alternating rounds spread the machine's
other load over both modes; the load average is printed with the figures, and the CPU time the
web server's processes spent a request (from /proc), which moves less with the neighbours than the rate.

    .venv/bin/python bench/observability.py [--rounds 2] [--seconds 10] [--connections 32]
    .venv/bin/python bench/observability.py --in-process [--rounds 3] [--requests 1500]

On a shared machine wrk's figures move with the neighbours' load; `--in-process` measures what
the load touches less (though still visibly): the CPU time one process spends per request served
through Django's full handler (test client, real embedded PostgreSQL), on vs off, alternating.
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

from bench.common import cpu_seconds, free_port, wait_for, web_processes  # noqa: E402

MODES = {
    "off": {"SLOP_METRICS": "false", "SLOP_REQUEST_LOG": "false", "SLOP_LOG_FORMAT": "plain"},
    # The production default: metrics and the JSON request line, no traces (none are exported
    # unless OTEL_EXPORTER_OTLP_ENDPOINT is set).
    "default": {"SLOP_METRICS": "true", "SLOP_REQUEST_LOG": "true", "SLOP_LOG_FORMAT": "json"},
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
    served = float(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    return {"rps": rate, "p50": latency("50"), "p99": latency("99"), "non2xx": non2xx, "requests": served}


def report(round_number: int, mode: str, path: str, figures: dict[str, float]) -> None:
    print(
        f"round {round_number} {mode:3} GET {path:14} {figures['rps']:8.1f} req/s "
        f"p50 {figures['p50']:6.2f} ms p99 {figures['p99']:7.2f} ms "
        f"non-2xx {int(figures['non2xx'])}  web CPU {figures['cpu_us']:6.1f} us/request  "
        f"load {os.getloadavg()[0]:.2f}",
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


def in_process_worker(mode: str, requests: int, sink_port: int) -> None:
    """One mode in this process: CPU seconds per GET /memory/:key and GET /info, printed as JSON."""
    import json

    os.environ.update(MODES[mode])
    if mode == "on":
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{sink_port}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slop_platform.settings")
    import logging

    import django

    django.setup()
    from django.test import Client

    logging.getLogger().handlers[0].stream = open(os.devnull, "w")  # noqa: SIM115 - the log's cost, not the terminal's
    key = (Path(os.environ["SLOP_DATA_DIR"]) / "demo_api_key").read_text().strip()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    client.post("/memory", {"key": "bench", "value": {"n": 1}}, content_type="application/json")
    out: dict[str, float] = {}
    for path in ("/memory/bench", "/info"):
        for _ in range(100):
            client.get(path)
        started = time.process_time()
        for _ in range(requests):
            response = client.get(path)
        assert response.status_code == 200, response.content
        out[path] = (time.process_time() - started) / requests
    print(json.dumps(out))


def in_process(rounds: int, requests: int, sink_port: int) -> None:
    import json

    scratch = Path(tempfile.mkdtemp(prefix="slop-bench-observability-"))
    env = {
        **os.environ,
        "SLOP_DATA_DIR": str(scratch),
        "SLOP_DEBUG": "true",
        "SLOP_EMBEDDINGS_PRELOAD": "false",
        "SLOP_RATE_LIMIT_PER_MINUTE": "0",
        "ALLOWED_HOSTS": "*",
    }
    env.pop("REDIS_URL", None)
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        subprocess.run([sys.executable, "manage.py", "ensure_demo_tenant"], cwd=ROOT, env=env, check=True,
                       capture_output=True)  # fmt: skip
        results: dict[str, dict[str, list[float]]] = {mode: {} for mode in MODES}
        for round_number in range(rounds):
            order = ["off", "default", "on"]
            for mode in order if round_number % 2 == 0 else order[::-1]:
                command = [sys.executable, __file__, "--worker", mode, "--requests", str(requests)]
                command += ["--sink-port", str(sink_port)]
                done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
                figures = json.loads(done.stdout.strip().splitlines()[-1])
                for path, seconds in figures.items():
                    results[mode].setdefault(path, []).append(seconds)
                    load = os.getloadavg()[0]
                    cpu = seconds * 1e6
                    print(f"round {round_number} {mode:3} GET {path:14} {cpu:8.1f} us CPU  load {load:.2f}")
        print(f"\nin process, {rounds} rounds x {requests} requests; OTLP exports: {OtlpSink.received}")
        for path in results["off"]:
            off = min(results["off"][path])
            for mode in ("default", "on"):
                added = min(results[mode][path]) - off
                print(
                    f"GET {path:14} off {off * 1e6:7.1f} us  {mode} +{added * 1e6:6.1f} us/request "
                    f"({100 * added / off:4.1f}% of the CPU)"
                )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--in-process", action="store_true")
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--worker", choices=sorted(MODES))
    parser.add_argument("--sink-port", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.worker:
        in_process_worker(args.worker, args.requests, args.sink_port)
        return
    if args.in_process:
        sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), OtlpSink)
        threading.Thread(target=sink.serve_forever, daemon=True).start()
        try:
            in_process(args.rounds, args.requests, sink.server_address[1])
        finally:
            sink.shutdown()
        return
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")

    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), OtlpSink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    port = args.port or free_port()
    scratch = Path(tempfile.mkdtemp(prefix="slop-bench-observability-"))
    results: dict[str, dict[str, list[dict[str, float]]]] = {mode: {} for mode in MODES}
    try:
        for round_number in range(args.rounds):
            order = ["off", "default", "on"]
            for mode in order if round_number % 2 == 0 else order[::-1]:
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
                        workers = web_processes(process.pid)
                        used = cpu_seconds(workers)
                        figures = wrk(base + path, args.seconds, args.connections, key)
                        figures["cpu_us"] = (cpu_seconds(workers) - used) * 1e6 / figures["requests"]
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
        mean = {mode: _mean(runs[path], "rps") for mode, runs in results.items()}
        cpu = {mode: _mean(runs[path], "cpu_us") for mode, runs in results.items()}
        off = mean["off"]
        costs = "   ".join(
            f"{mode} {mean[mode]:8.1f} req/s (cost {100 * (off - mean[mode]) / off:5.1f}%; "
            f"CPU +{100 * (cpu[mode] - cpu['off']) / cpu['off']:5.1f}%)"
            for mode in ("default", "on")
        )
        print(f"GET {path:14} off {off:8.1f} req/s, {cpu['off']:6.1f} us CPU   {costs}")


def _mean(runs: list[dict[str, float]], figure: str) -> float:
    return sum(run[figure] for run in runs) / len(runs)


if __name__ == "__main__":
    main()
