"""Scopes (PROTOCOL.md §3): parsing, matching and narrowing by the X-SLOP-Scope header.

A scope is `area[.identifier].permission`, or `*`. The first segment is the area, the last the
permission and everything between the identifier (which may contain dots). Memory keys and
resource ids match by prefix; tool and thread ids match exactly. `tools.safe.*` grants every tool
marked safe and `tools.safe.<id>` one safe tool; a tool literally named `safe` is `tools.safe.execute`.
The seed's shorthand `tools.calculator` (an identifier and no permission) means `tools.calculator.*`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

AREAS = frozenset({"chat", "tools", "memory", "resources", "pay", "agents", "usage", "billing"})
PERMISSIONS = frozenset({"read", "write", "execute", "list", "*"})
PREFIX_AREAS = frozenset({"memory", "resources"})
MAX_SCOPES = 100
MAX_SCOPE_LENGTH = 600


class ScopeError(ValueError):
    """A scope string that does not parse; the message names it."""

    def __init__(self, scope: str, reason: str) -> None:
        super().__init__(f"Invalid scope {scope!r}: {reason}")
        self.scope = scope
        self.reason = reason


@dataclass(frozen=True)
class Action:
    """What a request wants to do: `area`, an optional identifier and a permission."""

    area: str
    permission: str
    identifier: str | None = None
    safe_tool: bool = False

    def __str__(self) -> str:
        if self.identifier is None:
            return f"{self.area}.{self.permission}"
        return f"{self.area}.{self.identifier}.{self.permission}"


@dataclass(frozen=True)
class Scope:
    area: str  # "*" for the all-granting scope
    permission: str
    identifier: str | None = None  # None: every identifier in the area
    safe_only: bool = False  # tools.safe.* / tools.safe.<id>

    def __str__(self) -> str:
        if self.area == "*":
            return "*"
        if self.safe_only:
            return f"tools.safe.{self.identifier or '*'}"
        if self.identifier is None:
            return f"{self.area}.{self.permission}"
        return f"{self.area}.{self.identifier}.{self.permission}"

    def covers(self, action: Action) -> bool:
        if self.area == "*":
            return True
        if self.area != action.area:
            return False
        if self.safe_only:
            return (
                action.safe_tool
                and action.permission in ("execute", "read")
                and (self.identifier is None or self.identifier == action.identifier)
            )
        if self.permission not in ("*", action.permission):
            return False
        if self.identifier is None:
            return True
        if action.identifier is None:
            return False
        if self.area in PREFIX_AREAS:
            return action.identifier.startswith(self.identifier)
        return action.identifier == self.identifier


def parse_scope(text: str) -> Scope:
    scope = text.strip()
    if not scope:
        raise ScopeError(text, "empty scope")
    if len(scope) > MAX_SCOPE_LENGTH:
        raise ScopeError(scope[:40] + "…", f"longer than {MAX_SCOPE_LENGTH} characters")
    if scope == "*":
        return Scope(area="*", permission="*")
    if any(ch.isspace() for ch in scope):
        raise ScopeError(scope, "contains whitespace")
    segments = scope.split(".")
    area = segments[0]
    if area not in AREAS:
        raise ScopeError(scope, f"unknown area {area!r} (one of {', '.join(sorted(AREAS))}, or *)")
    if len(segments) == 1:
        raise ScopeError(scope, "needs a permission, e.g. " + f"{area}.read or {area}.*")
    last = segments[-1]
    if area == "tools" and len(segments) == 3 and segments[1] == "safe":
        if last == "*":
            return Scope(area="tools", permission="execute", safe_only=True)
        if last not in PERMISSIONS:
            return Scope(area="tools", permission="execute", identifier=last, safe_only=True)
    if len(segments) == 2 and last not in PERMISSIONS:
        # The seed's shorthand: `tools.calculator` grants that identifier everything.
        if not last:
            raise ScopeError(scope, "ends with a dot")
        return Scope(area=area, permission="*", identifier=last)
    if last not in PERMISSIONS:
        raise ScopeError(scope, f"unknown permission {last!r} (one of read, write, execute, list, *)")
    identifier = ".".join(segments[1:-1])
    if area in PREFIX_AREAS and identifier.endswith("*"):
        identifier = identifier[:-1]  # memory.user*.read: an explicit prefix
    if "*" in identifier:
        raise ScopeError(scope, "a wildcard may only be the whole permission or the whole scope")
    return Scope(area=area, permission=last, identifier=identifier or None)


def parse_scopes(text: str | Iterable[str]) -> ScopeSet:
    items = text.split(",") if isinstance(text, str) else list(text)
    items = [item for item in items if item.strip()] if isinstance(text, str) else items
    if isinstance(text, str) and not items:
        raise ScopeError(text, "no scopes given")
    if len(items) > MAX_SCOPES:
        raise ScopeError(f"{len(items)} scopes", f"at most {MAX_SCOPES} scopes")
    return ScopeSet(tuple(parse_scope(item) for item in items))


@dataclass(frozen=True)
class ScopeSet:
    scopes: tuple[Scope, ...]

    def allows(self, action: Action) -> bool:
        return any(scope.covers(action) for scope in self.scopes)

    def grants(self, scope: Scope) -> bool:
        """Whether these scopes allow everything `scope` does: a key made with `scope` by a caller
        holding these could do nothing its maker cannot (the console's key form checks this)."""
        if any(own.area == "*" for own in self.scopes):
            return True
        if scope.area == "*":
            return False
        if scope.safe_only:
            permissions: tuple[str, ...] = ("execute", "read")
        elif scope.permission == "*":
            permissions = ("read", "write", "execute", "list")
        else:
            permissions = (scope.permission,)
        return all(
            self.allows(Action(scope.area, permission, scope.identifier, safe_tool=scope.safe_only))
            for permission in permissions
        )

    def prefixes(self, area: str, permission: str) -> list[str] | None:
        """Identifiers granted in the area for the permission: None means all, [] means none.

        In memory and resources they are prefixes; in chat and tools, exact ids."""
        found: list[str] = []
        for scope in self.scopes:
            if scope.area == "*" or (
                scope.area == area and scope.permission in ("*", permission) and not scope.safe_only
            ):
                if scope.area == "*" or scope.identifier is None:
                    return None
                found.append(scope.identifier)
        return _minimal_prefixes(found) if area in PREFIX_AREAS else sorted(set(found))

    def strings(self) -> list[str]:
        return [str(scope) for scope in self.scopes]


def _minimal_prefixes(prefixes: Iterable[str]) -> list[str]:
    """Drop prefixes already covered by a shorter one."""
    result: list[str] = []
    for prefix in sorted(set(prefixes), key=len):
        if not any(prefix.startswith(kept) for kept in result):
            result.append(prefix)
    return sorted(result)


def intersect_prefixes(
    first: list[str] | None, second: list[str] | None, *, exact: bool = False
) -> list[str] | None:
    """Identifiers covered by both lists (None means everything); exact ids when `exact`."""
    if first is None:
        return second
    if second is None:
        return first
    if exact:
        return sorted(set(first) & set(second))
    both: list[str] = []
    for a in first:
        for b in second:
            if a.startswith(b):
                both.append(a)
            elif b.startswith(a):
                both.append(b)
    return _minimal_prefixes(both)


@dataclass(frozen=True)
class EffectiveScopes:
    """The key's own scopes, narrowed by the request's X-SLOP-Scope header when it has one."""

    granted: ScopeSet
    requested: ScopeSet | None = None

    def allows(self, action: Action) -> bool:
        if not self.granted.allows(action):
            return False
        return self.requested is None or self.requested.allows(action)

    def prefixes(self, area: str, permission: str) -> list[str] | None:
        own = self.granted.prefixes(area, permission)
        if self.requested is None:
            return own
        return intersect_prefixes(
            own, self.requested.prefixes(area, permission), exact=area not in PREFIX_AREAS
        )

    def may_any(self, area: str, permission: str) -> bool:
        """Whether some identifier in the area could be allowed (lists and searches need this)."""
        prefixes = self.prefixes(area, permission)
        return prefixes is None or bool(prefixes)

    def describe(self) -> dict[str, list[str] | None]:
        return {
            "granted": self.granted.strings(),
            "requested": self.requested.strings() if self.requested is not None else None,
        }
