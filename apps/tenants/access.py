"""Who may do what: the one layer where a scope decision is made (PROTOCOL.md §3).

Every SLOP view *declares* what each HTTP method needs (`access = {"GET": Need(...)}`) and the base
view runs the declaration before the handler (apps/tenants/api.py); the WebSocket consumer and the
chat model's tool calls run the same declarations through `enforce`. Services and selectors never
decide: a selector that lists or searches only *filters*, by the identifiers `readable()` returns.

The vocabulary:
- `Need(area, permission, ident)`: the caller must hold `area.<ident>.permission`; `ident` says
  where the identifier is read (`url("key")`, `body("thread_id")`, `query(...)`, or a function of
  the request), or is None for the area-wide action (`pay.execute`, `tools.list`).
- `NeedSome(area, *permissions)`: the caller may use one of the permissions on *some* identifier
  (lists, searches and queries, which then return only what is readable); else the seed's 403.
- `NeedTarget(loader)`: what is needed depends on the object (a tool's safe flag, a chat's
  thread). The loader loads the object once and says which actions would allow it (`Target`);
  the handler finds the object in `self.target`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from apps.core.errors import ApplicationError
from apps.tenants.scopes import Action

if TYPE_CHECKING:
    from apps.tenants.authentication import Principal


class HasScopes(Protocol):
    """Any caller the platform knows: an API key's principal, a ticket's, a public surface's."""

    @property
    def scopes(self) -> Any: ...


# --- The one decision ---------------------------------------------------------------------------


def allows(principal: HasScopes, action: Action) -> bool:
    """Whether the caller's effective scopes cover the action. Every scope decision ends here."""
    return bool(principal.scopes.allows(action))


def scope_violation(action: Action) -> ApplicationError:
    required = str(action)
    return ApplicationError(
        f"Scope violation: {required} requires explicit permission",
        code="scope_violation",
        status=403,
        extra={"permitted": False, "required_scope": required},
    )


def check(principal: HasScopes, *any_of: Action) -> None:
    """Raises the seed's 403 unless the caller may do one of the actions (the first is reported)."""
    if not any(allows(principal, action) for action in any_of):
        raise scope_violation(any_of[0])


def readable(principal: HasScopes, area: str, permission: str = "read") -> list[str] | None:
    """The identifiers (prefixes in memory and resources, exact ids elsewhere) a list or search
    may return: None means all, [] none. Filtering, not a check: selectors use this, nothing else."""
    prefixes: list[str] | None = principal.scopes.prefixes(area, permission)
    return prefixes


def may_some(principal: HasScopes, area: str, permission: str) -> bool:
    """Whether some identifier in the area could be allowed (what a list or search needs)."""
    return bool(principal.scopes.may_any(area, permission))


# --- What a request carries ---------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """The parts of a request a declaration may read. `body` is parsed only when asked for."""

    kwargs: Mapping[str, Any] = field(default_factory=dict)
    query: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body_reader: Callable[[], Any] = dict
    request: Any = None  # the DRF request, for sources that need more (a multipart file's name)

    def body(self) -> dict[str, Any]:
        data = self.body_reader()
        if not isinstance(data, Mapping):
            raise ApplicationError(
                f"The request body must be a JSON object, not {type(data).__name__}",
                code="invalid_request",
            )
        return dict(data)


Validator = Callable[[Any], Any]
Source = Callable[[Context], Any]


def _validated(value: Any, validate: Validator | None) -> str | None:
    if validate is not None:
        value = validate(value)
    return None if value is None else str(value)


def url(name: str, *, default: str | None = None, validate: Validator | None = None) -> Source:
    """The identifier is the URL's `name` part (`default` where a route has none)."""

    def read(context: Context) -> str | None:
        return _validated(context.kwargs.get(name, default), validate)

    read.__qualname__ = f"url({name!r})"
    return read


def body(name: str, *, validate: Validator | None = None) -> Source:
    """The identifier is the JSON body's `name` field."""

    def read(context: Context) -> str | None:
        return _validated(context.body().get(name), validate)

    read.__qualname__ = f"body({name!r})"
    return read


def query(name: str, *, validate: Validator | None = None) -> Source:
    """The identifier is the query string's `name` parameter."""

    def read(context: Context) -> str | None:
        return _validated(context.query.get(name) or None, validate)

    read.__qualname__ = f"query({name!r})"
    return read


# --- Declarations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """An object-dependent need: the object (None when missing), the actions any one of which
    allows it, and what to raise when it is missing — after the scope check, so a caller who
    may not touch the identifier learns nothing about whether it exists."""

    obj: Any
    any_of: tuple[Action, ...]
    missing: ApplicationError | None = None


@dataclass(frozen=True)
class Need:
    area: str
    permission: str
    ident: Source | None = None

    def resolve(self, principal: Principal, context: Context) -> Target:
        identifier = self.ident(context) if self.ident is not None else None
        return Target(obj=identifier, any_of=(Action(self.area, self.permission, identifier),))


@dataclass(frozen=True)
class NeedSome:
    area: str
    permissions: tuple[str, ...]
    ident: Source | None = None  # only names the scope a refusal reports

    def __init__(self, area: str, *permissions: str, ident: Source | None = None) -> None:
        object.__setattr__(self, "area", area)
        object.__setattr__(self, "permissions", permissions or ("read",))
        object.__setattr__(self, "ident", ident)

    def resolve(self, principal: Principal, context: Context) -> Target:
        if any(may_some(principal, self.area, permission) for permission in self.permissions):
            return Target(obj=None, any_of=())
        identifier = self.ident(context) if self.ident is not None else None
        raise scope_violation(Action(self.area, self.permissions[0], identifier))


Loader = Callable[["Principal", Context], Target]


@dataclass(frozen=True)
class NeedTarget:
    loader: Loader

    def resolve(self, principal: Principal, context: Context) -> Target:
        return self.loader(principal, context)


Declaration = Need | NeedSome | NeedTarget


def enforce(principal: Principal, need: Declaration, context: Context) -> Any:
    """Runs one declaration: the scope check, then the missing object's 404. Returns the object
    (or the identifier a `Need` read) for the handler."""
    target = need.resolve(principal, context)
    return enforce_target(principal, target)


def enforce_target(principal: Principal, target: Target) -> Any:
    if target.any_of:
        check(principal, *target.any_of)
    if target.missing is not None:
        raise target.missing
    return target.obj


__all__ = [
    "Context",
    "Need",
    "NeedSome",
    "NeedTarget",
    "Target",
    "allows",
    "body",
    "check",
    "enforce",
    "enforce_target",
    "query",
    "readable",
    "scope_violation",
    "url",
]
