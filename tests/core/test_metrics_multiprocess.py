"""Figures of several worker processes (prometheus_client's multiprocess mode, as granian's forked
workers write them) are summed at /metrics, a forked worker's kept apart from its parent's."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import os, sys
import django
django.setup()
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from apps.core.observability import metrics

metrics.HTTP_REQUESTS.labels("GET", "probe", "200").inc()
child = os.fork()
if child == 0:
    metrics.HTTP_REQUESTS.labels("GET", "probe", "200").inc()
    os._exit(0)
os.waitpid(child, 0)
metrics.HTTP_REQUESTS.labels("GET", "probe", "200").inc()
registry = CollectorRegistry()
MultiProcessCollector(registry)
for line in generate_latest(registry).decode().splitlines():
    if 'route="probe"' in line and line.startswith("slop_http_requests_total"):
        print(line)
print(sorted(os.listdir(os.environ["PROMETHEUS_MULTIPROC_DIR"])))
"""


def test_a_forked_workers_figures_are_its_own_and_summed(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "slop_platform.settings",
        "SECRET_KEY": "test-only",
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    total, files = done.stdout.strip().splitlines()[-2:]
    assert total.endswith(" 3.0"), done.stdout  # the parent's two and the child's one
    assert (
        len([name for name in ast.literal_eval(files) if name.startswith("counter_")]) == 2
    )  # one per process


WRITES = """
import os
import django
django.setup()
from apps.core.observability import metrics

metrics.HTTP_REQUESTS.labels("GET", "probe", "200").inc()
metrics._process_id[0] = 424242  # what the fork hook would keep in a child of that id
metrics.HTTP_REQUESTS.labels("GET", "probe", "200").inc()
print(sorted(os.listdir(os.environ["PROMETHEUS_MULTIPROC_DIR"])))
"""


def test_a_figure_is_written_under_the_process_id_kept_not_asked_each_time(tmp_path: Path) -> None:
    """prometheus_client asks the id before each write, to find a fork (a system call each time);
    the platform keeps it, updated in a forked child (the test above), and it is what names the
    file a write goes to."""
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "slop_platform.settings",
        "SECRET_KEY": "test-only",
    }
    done = subprocess.run(
        [sys.executable, "-c", WRITES], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    files = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    assert "counter_424242.db" in files and len([name for name in files if name.startswith("counter_")]) == 2
