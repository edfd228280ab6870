"""Figures of several worker processes (prometheus_client's multiprocess mode, as granian's forked
workers write them) are summed at /metrics, a forked worker's kept apart from its parent's; each
process writes its changes to its files in batches (apps.core.observability.multiprocess)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRELUDE = """
import os, sys, time
import django
django.setup()
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from apps.core.observability import metrics, multiprocess

def on_file():
    '''What another process (a scrape) reads from the files now, for route="probe".'''
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return [line for line in generate_latest(registry).decode().splitlines()
            if 'route="probe"' in line and line.startswith("slop_http_requests_total")]
"""


def run_script(tmp_path: Path, script: str) -> list[str]:
    """`script` after PRELUDE in a fresh interpreter writing to `tmp_path`: its output lines."""
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "slop_platform.settings",
        "SECRET_KEY": "test-only",
    }
    done = subprocess.run(
        [sys.executable, "-c", PRELUDE + script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()


def test_a_forked_workers_figures_are_its_own_and_summed(tmp_path: Path) -> None:
    lines = run_script(
        tmp_path,
        """
metrics.HTTP_REQUESTS.labels("GET", "probe", "200").inc()
child = os.fork()
if child == 0:
    metrics.HTTP_REQUESTS.labels("GET", "probe", "200").inc()
    multiprocess.flush()  # (a worker's lifespan shutdown does it; os._exit runs no atexit)
    os._exit(0)
os.waitpid(child, 0)
metrics.HTTP_REQUESTS.labels("GET", "probe", "200").inc()
for line in metrics.exposition().decode().splitlines():
    if 'route="probe"' in line and line.startswith("slop_http_requests_total"):
        print(line)
print(sorted(os.listdir(os.environ["PROMETHEUS_MULTIPROC_DIR"])))
""",
    )
    total, files = lines[-2:]
    assert total.endswith(" 3.0"), lines  # the parent's two and the child's one
    assert (
        len([name for name in ast.literal_eval(files) if name.startswith("counter_")]) == 2
    )  # one a process


def test_a_change_reaches_the_file_at_the_next_flush_within_a_second(tmp_path: Path) -> None:
    """A change adds in memory (no file write, lock or system call a figure); a scrape of another
    process sees it once flushed: by the process's flusher thread within FLUSH_SECONDS, or at once
    by the process answering /metrics (the test above) or ending a Celery task."""
    lines = run_script(
        tmp_path,
        """
from celery import signals
counter = metrics.HTTP_REQUESTS.labels("GET", "probe", "200")
counter.inc(); counter.inc()
print("before", on_file())
started = time.monotonic()
while not any(line.endswith(" 2.0") for line in on_file()) and time.monotonic() - started < 5:
    time.sleep(0.05)
print("flushed after", round(time.monotonic() - started, 2), on_file())
counter.inc()
signals.task_postrun.send(sender=None, task_id="t-1")
print("after a task", on_file())
""",
    )
    before, flushed, after_task = lines[-3:]
    assert "2.0" not in before and "1.0" not in before, lines
    seconds = float(flushed.split()[2])
    assert seconds <= 1.5 and flushed.endswith(" 2.0']"), lines
    assert after_task.endswith(" 3.0']"), lines
