"""Where a request's time goes inside the server, through Django's whole stack (middleware, the
view, the renderer) with Django's test client: the query embedding, the SQL, the JSON rendering
and the rest (middleware, authentication, the view's own Python), plus its statements and the CPU
it costs the Django process and its PostgreSQL backend. Needs Django set up.

    figures = profile(lambda index: client.get("/resources/search", {"q": f"x {index}"}), 60,
                      embed_modules=[apps.resources.search])
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import psutil


def profile(send: Callable[[int], Any], count: int, *, embed_modules: list[ModuleType]) -> dict[str, float]:
    from django.db import connection
    from rest_framework.renderers import JSONRenderer

    spent = {"embed": 0.0, "sql": 0.0, "render": 0.0}
    statements = [0]

    def timed(kind: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[kind] += time.perf_counter() - started

        return wrapper

    def sql_timer(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        statements[0] += 1
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent["sql"] += time.perf_counter() - started

    originals = [(module, module.embed_text) for module in embed_modules]
    render = JSONRenderer.render
    for module, function in originals:
        module.embed_text = timed("embed", function)  # type: ignore[attr-defined]
    JSONRenderer.render = timed("render", render)  # type: ignore[method-assign]
    rows: dict[str, list[float]] = {
        key: [] for key in ("total", "embed", "sql", "render", "rest", "statements")
    }
    try:
        send(-1)  # warm: connection, caches
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = psutil.Process(cursor.fetchone()[0])
        cpu_django, cpu_postgres = time.process_time(), sum(backend.cpu_times()[:2])
        with connection.execute_wrapper(sql_timer):
            for index in range(count):
                spent.update(embed=0.0, sql=0.0, render=0.0)
                statements[0] = 0
                started = time.perf_counter()
                response = send(index)
                total = time.perf_counter() - started
                assert response.status_code == 200, response.content
                rows["total"].append(total * 1000)
                for kind in ("embed", "sql", "render"):
                    rows[kind].append(spent[kind] * 1000)
                rows["rest"].append((total - sum(spent.values())) * 1000)
                rows["statements"].append(statements[0])
        cpu_django = (time.process_time() - cpu_django) / count * 1000
        cpu_postgres = (sum(backend.cpu_times()[:2]) - cpu_postgres) / count * 1000
    finally:
        for module, function in originals:
            module.embed_text = function  # type: ignore[attr-defined]
        JSONRenderer.render = render  # type: ignore[method-assign]
    figures = {key: statistics.median(values) for key, values in rows.items()}
    figures.update(cpu_django=cpu_django, cpu_postgres=cpu_postgres, max_statements=max(rows["statements"]))
    return figures


def describe(figures: dict[str, float]) -> str:
    return (
        f"total {figures['total']:.1f} ms = query embedding {figures['embed']:.1f} + SQL {figures['sql']:.1f}"
        f" + JSON rendering {figures['render']:.1f} + the rest (middleware, auth, view) {figures['rest']:.1f}"
        f" (p50 each); {figures['statements']:.0f} statement(s) (at most {figures['max_statements']:.0f});"
        f" CPU per request: Django {figures['cpu_django']:.1f} ms,"
        f" PostgreSQL {figures['cpu_postgres']:.1f} ms"
    )
