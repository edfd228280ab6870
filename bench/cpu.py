"""CPU-seconds the platform's processes spend: what a shared machine's load changes little.

Wall-clock figures on a busy 2-core machine measure the neighbours as much as the code; the CPU
time the platform's own processes use for a piece of work does not (much). `snapshot()` reads it
for the process trees of `serve` and of the embedded PostgreSQL, by kind of process; the
difference of two snapshots is what ran in between. A process that exited meanwhile is counted in
its parent's children's time once reaped (PostgreSQL backends by the postmaster, pool processes by
Celery), so nothing is lost.

    before = snapshot([server.pid, postmaster_pid(data_dir)])
    ...
    spent = since(before, [server.pid, postmaster_pid(data_dir)])  # {"web": 1.2, "postgres": ...}
"""

from __future__ import annotations

from pathlib import Path

import psutil

KINDS = (
    ("slop_platform.web", "web"),
    ("granian", "web"),
    ("postgres", "postgres"),
    ("redis-server", "redis"),
    ("manage.py serve", "serve"),
)


def kind_of(command: str) -> str:
    if "celery" in command:
        return "beat" if " beat" in command else "celery"
    for marker, kind in KINDS:
        if marker in command:
            return kind
    return "other"


def postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postgres" / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def snapshot(roots: list[int | None]) -> dict[str, float]:
    """CPU-seconds (user + system, own and reaped children's) of every process under `roots`."""
    totals: dict[str, float] = {}
    seen: set[int] = set()
    for root in roots:
        if root is None:
            continue
        try:
            top = psutil.Process(root)
            processes = [top, *top.children(recursive=True)]
        except psutil.Error:
            continue
        for process in processes:
            if process.pid in seen:
                continue
            seen.add(process.pid)
            try:
                times = process.cpu_times()
                command = " ".join(process.cmdline()) or process.name()
            except psutil.Error:
                continue
            kind = kind_of(command)
            spent = times.user + times.system + times.children_user + times.children_system
            totals[kind] = totals.get(kind, 0.0) + spent
    return totals


def since(before: dict[str, float], roots: list[int | None]) -> dict[str, float]:
    after = snapshot(roots)
    return {kind: after.get(kind, 0.0) - before.get(kind, 0.0) for kind in after if kind != "serve"}


def describe(spent: dict[str, float], units: int, unit: str) -> str:
    """`41.2 ms CPU per chunk (celery 35.1, postgres 4.0, web 2.1)`."""
    total = sum(spent.values())
    parts = ", ".join(
        f"{kind} {seconds / units * 1000:.1f}"
        for kind, seconds in sorted(spent.items(), key=lambda item: -item[1])
        if seconds / units * 1000 >= 0.05
    )
    return f"{total / units * 1000:.1f} ms CPU per {unit} ({parts})"
