"""What GET /info says, derived from what is installed rather than from a hand-kept list.

Endpoints come from the URL configuration (every view with an `info_description`); capabilities
are merged from each installed app's `slop_capabilities(principal)`, which derives them from what is
installed and configured (None: anonymous, the platform's; a principal: its tenant's); an app may
add per-caller details (its models, its tools) through a `slop_info(principal)` method.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from django.apps import apps
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import URLPattern, URLResolver, get_resolver

_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")
_HIDDEN_METHODS = {"options", "head", "trace"}


def _walk(patterns: list[Any], prefix: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found.extend(_walk(pattern.url_patterns, route))
        elif isinstance(pattern, URLPattern):
            found.append((route, pattern.callback))
    return found


def installed_endpoints() -> list[dict[str, Any]]:
    return _endpoints_of(get_resolver())


@cache  # a process's routes are fixed once it has started; one entry per URLconf
def _endpoints_of(resolver: URLResolver) -> list[dict[str, Any]]:
    endpoints: dict[str, dict[str, Any]] = {}
    for route, callback in _walk(resolver.url_patterns):
        view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        description = getattr(view_class, "info_description", None)
        if view_class is None or not description:
            continue
        path = "/" + _CONVERTER.sub(r":\1", route.lstrip("^").rstrip("$"))
        methods = [
            name.upper()
            for name in view_class.http_method_names
            if name not in _HIDDEN_METHODS and hasattr(view_class, name)
        ]
        entry = endpoints.setdefault(path, {"path": path, "methods": [], "description": description})
        entry["methods"] = sorted(set(entry["methods"]) | set(methods))
    return list(endpoints.values())


BASE_CAPABILITIES: dict[str, Any] = {
    "streaming": False,
    "websockets": False,
    "sse": False,
    "ndjson": False,
    "models": [],
    "semantic_search": False,
    "scopes": True,
    "patterns": [],
}


def _merge(merged: dict[str, Any], offered: dict[str, Any]) -> dict[str, Any]:
    for key, value in offered.items():
        if isinstance(value, list) and isinstance(merged.get(key), list):
            merged[key] = sorted(set(merged[key]) | set(value))
        elif isinstance(value, bool) and isinstance(merged.get(key), bool):
            merged[key] = merged[key] or value  # one app's transport is enough (tools' SSE, chat's)
        else:
            merged[key] = value
    return merged


def _offered(config: Any, principal: Any) -> dict[str, Any]:
    """An app's capabilities: a `slop_capabilities(principal)` method, or a fixed dict."""
    offered = getattr(config, "slop_capabilities", None)
    if callable(offered):
        return dict(offered(principal))
    return dict(offered or {})


def capabilities(principal: Any = None) -> dict[str, Any]:
    """What this server can do, from what is installed and configured; with a principal, what its
    tenant can do (its own models, its own Stripe key)."""
    if principal is None:
        return _anonymous_capabilities()
    merged = dict(BASE_CAPABILITIES)
    for config in apps.get_app_configs():
        _merge(merged, _offered(config, principal))
    return merged


@cache  # settings are fixed once a process has started; tests clear it when they change settings
def _anonymous_capabilities() -> dict[str, Any]:
    merged = dict(BASE_CAPABILITIES)
    for config in apps.get_app_configs():
        _merge(merged, _offered(config, None))
    return merged


@receiver(setting_changed)
def _forget_capabilities(**kwargs: Any) -> None:
    _anonymous_capabilities.cache_clear()


def caller_details(principal: Any) -> dict[str, Any]:
    details: dict[str, Any] = {}
    for config in apps.get_app_configs():
        hook = getattr(config, "slop_info", None)
        if callable(hook):
            details.update(hook(principal))
    return details
