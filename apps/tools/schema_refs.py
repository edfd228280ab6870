"""The `$ref`s of a tool schema: local only, resolvable, and never forming a cycle.

A recursive schema (`{"$ref": "#"}` under a property, or `$defs` that refer to each other) is
valid JSON Schema, but a cycle that consumes no input (`{"$ref": "#/$defs/a"}` where `a` refers to
`b` and `b` to `a`) sends a validator into endless recursion, and the model providers that inline
references before sending a tool's schema loop on any cycle. Tool parameters are flat call
arguments, so every cycle is refused when the tool is registered."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

MAX_REFS = 200  # the cycle check compares every pair of references


class RefProblem(ValueError):
    """Why the schema's references cannot be used, as a sentence."""


def _walk(node: Any, pointer: str, refs: list[tuple[str, str]], anchors: dict[str, str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor"):
                raise RefProblem(f"{key} (at {pointer or '/'}) is not supported in tool schemas")
            if key == "$id" and pointer:
                raise RefProblem(f"$id is only allowed at the root of a tool schema, not at {pointer}")
            if key == "$ref" and isinstance(value, str):
                refs.append((pointer, value))
            if key == "$anchor" and isinstance(value, str):
                anchors[value] = pointer
            _walk(value, f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}", refs, anchors)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _walk(item, f"{pointer}/{index}", refs, anchors)


def _target(schema: Any, ref: str, anchors: dict[str, str]) -> str:
    """The JSON pointer (normalised) that a local `$ref` names; RefProblem when it names nothing."""
    if not ref.startswith("#"):
        raise RefProblem(f"only local references (#/…) are allowed, not {ref!r}")
    fragment = unquote(ref[1:])
    if fragment and not fragment.startswith("/"):
        if fragment not in anchors:
            raise RefProblem(f"the reference {ref!r} names no $anchor in the schema")
        return anchors[fragment]
    node = schema
    parts = [] if not fragment else fragment[1:].split("/")
    normalised = ""
    for raw in parts:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise RefProblem(f"the reference {ref!r} points to nothing in the schema")
        normalised += "/" + part.replace("~", "~0").replace("/", "~1")
    return normalised


def _within(pointer: str, ancestor: str) -> bool:
    return pointer == ancestor or pointer.startswith(ancestor + "/")


def check_refs(schema: dict[str, Any]) -> None:
    """Refuse remote, dangling and cyclic references (RefProblem naming the first one found)."""
    refs: list[tuple[str, str]] = []
    anchors: dict[str, str] = {}
    _walk(schema, "", refs, anchors)
    if len(refs) > MAX_REFS:
        raise RefProblem(f"the schema has {len(refs)} $refs; at most {MAX_REFS} are allowed")
    edges = [(location, _target(schema, ref, anchors), ref) for location, ref in refs]
    # Reference i leads to reference j when j sits inside what i points to; a cycle in that graph is
    # a schema that (directly or through others) contains itself.
    following = {
        i: [j for j, (location, _, _) in enumerate(edges) if _within(location, edges[i][1])]
        for i in range(len(edges))
    }
    state: dict[int, int] = {}  # 1: on the current path, 2: done

    def visit(i: int) -> None:
        state[i] = 1
        for j in following[i]:
            if state.get(j) == 1:
                location, _, ref = edges[j]
                raise RefProblem(
                    f"the $ref {ref!r} at {location or '/'} is recursive (the schema refers back to "
                    "itself); tool schemas cannot be recursive"
                )
            if j not in state:
                visit(j)
        state[i] = 2

    for i in range(len(edges)):
        if i not in state:
            visit(i)
