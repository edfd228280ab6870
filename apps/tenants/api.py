"""The base view every SLOP endpoint inherits: the caller, the tenant, and the declared access check.

A view says what each HTTP method needs and the base checks it in `initial()` — after
authentication and the rate limit, before the handler — so no handler can forget it:

    class MemoryItemView(SlopView):
        access = {
            "GET": Need("memory", "read", url("key")),
            "PUT": Need("memory", "write", url("key")),
        }

A class that serves a method without declaring it does not import (ImproperlyConfigured), and the
access hooks cannot be overridden. A view that truly needs no scope check (health checks, /info,
the Stripe webhook, which is authenticated by its signature) says why in `dangerously_unchecked`.
The vocabulary (`Need`, `NeedSome`, `NeedTarget`, `url`, `body`, `query`) is apps/tenants/access.py.

It lives in tenants, not core: the view's whole job is identity and access (the principal from
the key, its tenant, the declared scope check), which is what this app owns. apps/core stays
below every feature app (errors, ids, the tenant-owned base model) and imports none of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import ApplicationError
from apps.core.renderers import ORJSONRenderer, orjson_bytes
from apps.tenants.access import Context, Declaration, Need, NeedSome, NeedTarget, enforce
from apps.tenants.authentication import Principal
from apps.tenants.models import Tenant

_UNDECLARED_METHODS = frozenset({"options", "head", "trace"})  # OPTIONS describes; HEAD is GET's
_SEALED = ("initial", "check_access", "dispatch")


# Accept headers that DRF's negotiation answers with the first renderer when it is JSON's: a
# request sending one of these (or none) skips the negotiation's parsing of the header.
_JSON_ACCEPTS = frozenset({None, "*/*", "application/json"})

# The authentication, permission, parser and renderer objects of a view class: DRF builds them
# anew for every request, though none keeps state between requests (the throttle does: it is
# still made per request). Keyed by the classes, so a view whose list changes gets its own.
_shared: dict[tuple[Any, ...], list[Any]] = {}


def _instances(classes: Iterable[Any]) -> list[Any]:
    key = tuple(classes)
    found = _shared.get(key)
    if found is None:
        found = _shared.setdefault(key, [cls() for cls in key])
    return found


def served_methods(view_class: type[APIView]) -> list[str]:
    """The HTTP methods a view class has a handler for (upper case), OPTIONS/HEAD aside."""
    return [
        name.upper()
        for name in view_class.http_method_names
        if name not in _UNDECLARED_METHODS and callable(getattr(view_class, name, None))
    ]


class SlopView(APIView):
    """Authenticated by API key (or another authentication class that yields a Principal); each
    served method declared in `access`; `info_description` lists the route in GET /info."""

    info_description: str | None = None
    access: ClassVar[Mapping[str, Declaration]] = {}
    dangerously_unchecked: ClassVar[str] = ""  # a reason, for views no scope applies to
    target: Any = None  # what the method's declaration loaded or read (an object, an identifier)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _SEALED:
            if name in cls.__dict__:
                raise ImproperlyConfigured(
                    f"{cls.__module__}.{cls.__qualname__} overrides {name}(): the access check "
                    "runs there for every view; declare `access` instead"
                )
        served = served_methods(cls)
        for method in cls.access:
            if not isinstance(cls.access[method], Need | NeedSome | NeedTarget):
                raise ImproperlyConfigured(f"{cls.__qualname__}.access[{method!r}] is not a declaration")
            if method not in served:
                raise ImproperlyConfigured(
                    f"{cls.__qualname__}.access declares {method}, which it does not serve"
                )
        if cls.dangerously_unchecked:
            return
        undeclared = [method for method in served if method not in cls.access]
        if undeclared:
            raise ImproperlyConfigured(
                f"{cls.__module__}.{cls.__qualname__} serves {', '.join(undeclared)} without an access "
                "declaration: add access = {method: Need(...)}, or dangerously_unchecked = 'why'"
            )

    # --- what DRF makes for each request, made once ------------------------------------------

    def get_authenticators(self) -> list[Any]:
        return _instances(self.authentication_classes)

    def get_permissions(self) -> list[Any]:
        return _instances(self.permission_classes)

    def get_parsers(self) -> list[Any]:
        return _instances(self.parser_classes)

    def get_renderers(self) -> list[Any]:
        return _instances(self.renderer_classes)

    def get_content_negotiator(self) -> Any:
        return _instances((self.content_negotiation_class,))[0]

    @property
    def default_response_headers(self) -> dict[str, str]:
        # DRF lists the allowed methods anew for every response; they are the class's (HEAD
        # included, which View.setup() adds to every instance serving GET).
        cls = type(self)
        headers: dict[str, str] | None = cls.__dict__.get("_slop_response_headers")
        if headers is None:
            headers = dict(super().default_response_headers)
            cls._slop_response_headers = headers  # type: ignore[attr-defined]
        return dict(headers)  # finalize_response pops Vary from it

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        """DRF's negotiation, except for the requests every JSON client sends (no Accept, `*/*` or
        `application/json`, no ?format=): for those its answer is the first renderer when that is
        JSON, and parsing the header is the part of the request that costs."""
        if (
            type(self.get_content_negotiator()) is DefaultContentNegotiation
            and getattr(self, "format_kwarg", None) is None
            and not request._request.META.get("QUERY_STRING")
            and request._request.META.get("HTTP_ACCEPT") in _JSON_ACCEPTS
        ):
            first = self.get_renderers()[0]
            if first.media_type == "application/json":
                return first, first.media_type
        return super().perform_content_negotiation(request, force)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        """DRF's, and a JSON answer rendered here at once: rendering it later goes through the
        response's renderer context and the renderer's reading of the media type for the same
        bytes (orjson's, with DRF's escapes). Anything else (an indent asked for, another
        renderer, a body orjson cannot write) is rendered by DRF as before."""
        response = super().finalize_response(request, response, *args, **kwargs)
        if (
            type(response) is Response
            and response.data is not None
            and response.content_type is None
            and type(response.accepted_renderer) is ORJSONRenderer
            and response.accepted_media_type == "application/json"
        ):
            rendered = orjson_bytes(response.data)
            if rendered is not None:
                response["Content-Type"] = "application/json"  # the renderer's media type, no charset
                response.content = rendered  # marks the response rendered
        return response

    @property
    def principal(self) -> Principal:
        principal = self.request.auth
        if principal is None or not hasattr(principal, "scopes"):  # HasApiKey runs first: a guard
            raise ApplicationError("Missing API key", code="unauthenticated", status=401)
        return principal  # type: ignore[return-value]

    @property
    def tenant(self) -> Tenant:
        return self.principal.tenant

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication, permission, rate limit
        self.check_access(request)

    def check_access(self, request: Request) -> None:
        method = "GET" if request.method == "HEAD" else str(request.method)
        need = self.access.get(method)
        if self.dangerously_unchecked or need is None:
            return  # no handler for the method either: dispatch answers 405
        self.target = enforce(self.principal, need, request_context(request, self.kwargs))


def request_context(request: Request, kwargs: Mapping[str, Any]) -> Context:
    def read_body() -> Any:
        data: Any = request.data
        if hasattr(data, "getlist"):  # a form: one value per field, files aside
            return {key: data.get(key) for key in data}
        return data

    return Context(
        kwargs=kwargs,
        query=request.query_params,
        headers=request.headers,
        body_reader=read_body,
        request=request,
    )


class PublicView(SlopView):
    """No credential needed. A key that is sent is still checked; each subclass says in
    `dangerously_unchecked` why no scope applies."""

    permission_classes = [AllowAny]


class JsonOrStreamNegotiation(BaseContentNegotiation):
    """For streaming views: errors are always JSON, whatever the client accepts (EventSource sends
    `Accept: text/event-stream`, which no DRF renderer offers)."""

    def select_parser(self, request: Request, parsers: Iterable[Any]) -> Any:
        candidates = list(parsers)
        for parser in candidates:
            if parser.media_type == "application/json":
                return parser
        return candidates[0] if candidates else None

    def select_renderer(
        self, request: Request, renderers: Iterable[Any], format_suffix: str | None = None
    ) -> Any:
        first = next(iter(renderers))
        return first, first.media_type


def json_body(request: Request) -> dict[str, Any]:
    """The body as a JSON object, or a 400 that says what was sent instead."""
    data = request.data
    if not isinstance(data, dict):
        raise ApplicationError(
            f"The request body must be a JSON object, not {type(data).__name__}", code="invalid_request"
        )
    return data
