"""The JSON answers for routes Django itself resolves (404, 500, …); on the HTML paths, the
console's own 403 and 404 pages.

/info and the health checks are API views on the base view (apps/tenants/api.py), which lives
above core, so they are slop_platform/views.py: apps/core imports no feature app.
"""

from __future__ import annotations

import sys

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.core.degraded import dependency_error
from apps.core.errors import error_for_status, error_response
from apps.core.middleware import not_found_page, serves_html


# Production's handlers (DEBUG off); with DEBUG on, PlatformMiddleware (json_error_page) turns Django's
# technical pages into the same answers.
def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """The console's page on the HTML paths (an unknown console route, a member's link to a
    deleted key), the PROTOCOL.md error everywhere else."""
    if serves_html(request.path_info):
        return not_found_page(request)
    return error_response(error_for_status(request, 404))


def server_error(request: HttpRequest) -> HttpResponse:
    # An exception that escaped a middleware: a dependency's failure is still its 503.
    exception = sys.exc_info()[1]
    unavailable = dependency_error(exception) if exception is not None else None
    return error_response(unavailable or error_for_status(request, 500))


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(error_for_status(request, 400))


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """A page for people on the HTML paths (the console's: a member on an admin's page), the
    PROTOCOL.md error everywhere else."""
    if serves_html(request.path_info):
        reason = str(exception or "") or "Your role in this team does not include this page."
        return render(request, "403.html", {"reason": reason}, status=403)
    return error_response(error_for_status(request, 403))


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF is checked on the HTML paths only (PAGES_MIDDLEWARE); Django's own page says nothing a
    person can act on."""
    reason = (
        "The form's security token was missing or out of date (the page may have been open a long "
        "time, or cookies are blocked). Reload the page and try again."
    )
    return render(request, "403.html", {"reason": reason, "csrf": True}, status=403)
