"""The platform's own routes: /info (the installation and the caller) and the health checks.

They live in the project package, not in apps/core: they are views on the base view
(apps/tenants/api.py: authentication and declared access), and apps/core imports no feature app.
What /info reports comes from each app's AppConfig hooks (apps/core/info.py), so this module
names no feature app either.
"""

from __future__ import annotations

import contextvars
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.asgi import DirectWSGIHandler
from apps.core.info import caller_details, capabilities, installed_endpoints
from apps.core.serializers import HealthSerializer, InfoSerializer, ReadinessSerializer
from apps.core.serving import DirectRoute, LoopRoute, Scope
from apps.tenants import direct, loop
from apps.tenants.api import PublicView
from apps.tenants.authentication import Principal

logger = logging.getLogger(__name__)


class InfoView(PublicView):
    info_description = (
        "What this server is and can do; with a key, the caller's tenant, models, tools and scopes"
    )
    dangerously_unchecked = "anonymous by the protocol; with a key it only describes the caller"

    @extend_schema(responses={200: InfoSerializer})
    def get(self, request: Request) -> Response:
        return Response(info_answer(request.auth))


def info_answer(principal: Any) -> dict[str, Any]:
    """GET /info's answer to a caller (a Principal, or None for no one); also served directly."""
    body = {
        "name": settings.SLOP_NAME,
        "version": settings.VERSION,
        "description": settings.SLOP_DESCRIPTION,
        "endpoints": installed_endpoints(),
        "capabilities": capabilities(principal if isinstance(principal, Principal) else None),
        "creator": {"name": "SLOP Platform"},
        "links": {"documentation": "/docs", "openapi": "/openapi.json"},
    }
    if isinstance(principal, Principal):
        body["tenant"] = {"slug": principal.tenant.slug, "name": principal.tenant.name}
        body["scopes"] = principal.scopes.describe()
        if principal.is_public:  # key-less on a tenant's public surface: say what it offers
            body["public_surface"] = {
                "base_url": f"/t/{principal.tenant.slug}",
                "scopes": list(principal.tenant.public_scopes),
                "rate_limit_per_minute": settings.ANON_RATE_LIMIT_PER_MINUTE,
            }
        body.update(caller_details(principal))
    return body


def _info_direct(request: HttpRequest) -> HttpResponse:
    return direct.serve(request, InfoView, "GET", {}, lambda principal, target: info_answer(principal))


def info_direct_route() -> DirectRoute:
    """GET /info with a key, as JSON clients send it, served directly (apps.tenants.direct)."""
    handler = DirectWSGIHandler(_info_direct, route="info", url_name="info", kwargs_of=lambda path: {})
    return DirectRoute(accepts=_info_accepts, app=handler)


def info_loop_route() -> LoopRoute:
    """The same requests, answered on the event loop (apps.tenants.loop) while the tenant's
    snapshots are in this process (the answer reads no database then); else on the thread."""
    loop.check_view(InfoView)

    async def answer_info(principal: Principal, target: Any, prepared: dict[str, Any]) -> dict[str, Any]:
        return prepared

    call = loop.Call(InfoView, "GET", {}, answer_info, route="info", prepare=info_answer)

    async def answer(scope: Scope, body: bytes) -> loop.Answer | None:
        return await loop.answer_on_loop(scope, call)

    return LoopRoute(accepts=_info_accepts, answer=answer)


def _info_accepts(scope: Scope) -> bool:
    return scope["path"] == "/info" and direct.keyed_json_get(scope)


class HealthzView(PublicView):
    """Alive: the process answers. It checks nothing else, so no dependency's fault kills it."""

    dangerously_unchecked = "a health check for load balancers: no tenant data"

    authentication_classes = []
    throttle_classes = []

    @extend_schema(responses={200: HealthSerializer})
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class ReadyzView(PublicView):
    """Ready: the database and (when configured) Redis answer; 503 otherwise, within
    SLOP_READYZ_TIMEOUT whatever hangs (each check runs on a thread of its own, given that long)."""

    dangerously_unchecked = "a health check for load balancers: no tenant data"

    authentication_classes = []
    throttle_classes = []

    @extend_schema(responses={200: ReadinessSerializer, 503: ReadinessSerializer})
    def get(self, request: Request) -> Response:
        checks = {"database": _checks.submit(contextvars.copy_context().run, _database_check)}
        if settings.REDIS_URL:
            checks["redis"] = _checks.submit(_redis_check)
        deadline = time.monotonic() + settings.SLOP_READYZ_TIMEOUT
        results: dict[str, str] = {}
        for name, future in checks.items():
            try:
                results[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                logger.warning("readyz: %s did not answer within %gs", name, settings.SLOP_READYZ_TIMEOUT)
                results[name] = "unavailable"
        ready = all(value == "ok" for value in results.values())
        return Response(
            {"status": "ready" if ready else "unavailable", "checks": results}, status=200 if ready else 503
        )


# A check stuck on a frozen server holds its thread until the database deadlines free it; a few
# threads, so stuck ones never pile up (a queued check times out like a stuck one).
_checks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="slop-readyz")


def _database_check() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:
        logger.warning("readyz: database unavailable: %s", exc)
        return "unavailable"
    finally:
        connection.close()  # this thread's connection goes back to the pool


def _redis_check() -> str:
    import redis

    try:
        client = redis.Redis.from_url(
            str(settings.REDIS_URL),
            socket_timeout=settings.SLOP_REDIS_SOCKET_TIMEOUT,
            socket_connect_timeout=settings.SLOP_REDIS_CONNECT_TIMEOUT,
        )
        try:
            client.ping()
        finally:
            client.close()
        return "ok"
    except redis.RedisError as exc:
        logger.warning("readyz: redis unavailable: %s", exc)
        return "unavailable"
