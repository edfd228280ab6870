"""Template helpers for the operators' admin."""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings
from django.http.request import split_domain_port

register = template.Library()

# Browsers keep Secure cookies from plain-HTTP localhost pages (a "potentially trustworthy" origin).
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "[::1]"}


@register.simple_tag(takes_context=True)
def sign_in_needs_https(context: dict[str, Any]) -> bool:
    """True when this page came over plain HTTP but the session and CSRF cookies are HTTPS-only:
    the browser drops them, so signing in would fail with a CSRF error and no reason given."""
    request = context.get("request")
    if request is None or request.is_secure() or not settings.SESSION_COOKIE_SECURE:
        return False
    domain, _port = split_domain_port(request.get_host())
    return domain not in _LOOPBACK_HOSTS
