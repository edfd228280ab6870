"""Tool parameter schemas: accepting the seed's shapes, checking a schema, validating a call.

A schema is stored as a full JSON Schema object (`{"type": "object", "properties": …}`). When a
tool is registered, `parameters` may also be given the way the seed lists them: a map of name →
JSON-Schema property, or the seed's shorthand name → type name (`{"expression": "string"}`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError
from referencing.exceptions import Unresolvable

from apps.core.errors import ValidationFailed
from apps.tools.schema_refs import RefProblem, check_refs

MAX_SCHEMA_BYTES = 64 * 1024
MAX_ERRORS = 20
_TYPE_NAMES = {"string", "number", "integer", "boolean", "object", "array", "null"}


class SchemaProblem(ValueError):
    """Why a schema cannot be used, as a sentence."""


def schema_from_parameters(parameters: Any) -> dict[str, Any]:
    """A full JSON Schema from a `parameters` value in any of the accepted shapes."""
    if not isinstance(parameters, dict):
        raise SchemaProblem("parameters must be an object mapping names to JSON-Schema properties")
    if parameters.get("type") == "object" and isinstance(parameters.get("properties", {}), dict):
        return parameters
    properties: dict[str, Any] = {}
    for name, value in parameters.items():
        if isinstance(value, str):
            if value not in _TYPE_NAMES:
                raise SchemaProblem(f"parameter {name!r}: unknown type {value!r}")
            properties[name] = {"type": value}
        elif isinstance(value, dict):
            properties[name] = value
        else:
            raise SchemaProblem(f"parameter {name!r} must be a JSON-Schema object or a type name")
    return {"type": "object", "properties": properties}


def _refs(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                found.append(value)
            found.extend(_refs(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_refs(item))
    return found


# A quantified group that itself contains a quantifier, e.g. (a+)+ or (\w*)*: the classic
# catastrophic-backtracking shape. Python's re has no time limit, so such patterns are refused.
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)\s*[+*{]")
MAX_PATTERN_LENGTH = 500


def _patterns(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            found.append(node["pattern"])
        if isinstance(node.get("patternProperties"), dict):
            found.extend(str(key) for key in node["patternProperties"])
        for value in node.values():
            found.extend(_patterns(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_patterns(item))
    return found


def check_schema(schema: Any) -> dict[str, Any]:
    """The schema if it is a usable JSON Schema for tool parameters; SchemaProblem otherwise."""
    if not isinstance(schema, dict):
        raise SchemaProblem("the schema must be a JSON object")
    if len(json.dumps(schema)) > MAX_SCHEMA_BYTES:
        raise SchemaProblem(f"the schema is larger than {MAX_SCHEMA_BYTES} bytes")
    if schema.get("type") != "object":
        raise SchemaProblem('the schema must describe an object ("type": "object")')
    external = [ref for ref in _refs(schema) if not ref.startswith("#")]
    if external:
        raise SchemaProblem(f"only local references (#/…) are allowed, not {external[0]!r}")
    try:
        check_refs(schema)
    except RefProblem as exc:
        raise SchemaProblem(str(exc)) from None
    for pattern in _patterns(schema):
        if len(pattern) > MAX_PATTERN_LENGTH or _NESTED_QUANTIFIER.search(pattern):
            raise SchemaProblem(
                f"the pattern {pattern[:60]!r} is too long or nests quantifiers (slow to match); simplify it"
            )
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(part) for part in exc.path) or "(root)"
        raise SchemaProblem(f"not a valid JSON Schema at {where}: {exc.message}") from None
    return schema


def _field(error: ValidationError) -> str:
    path = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        if missing:
            return ".".join(filter(None, [path, str(missing[0])]))
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        return path or "non_field_errors"
    return path or "non_field_errors"


def validate_parameters(schema: dict[str, Any], parameters: dict[str, Any]) -> None:
    """Raise a 400 ValidationFailed naming every bad field (up to MAX_ERRORS)."""
    validator = Draft202012Validator(schema)
    details: dict[str, list[str]] = {}
    try:
        errors = sorted(validator.iter_errors(parameters), key=lambda error: list(error.absolute_path))
    except Unresolvable as exc:
        raise ValidationFailed(
            {"schema": [f"The tool's schema has an unresolvable reference: {exc}"]}
        ) from None
    for error in errors[:MAX_ERRORS]:
        details.setdefault(_field(error), []).append(error.message)
    if details:
        raise ValidationFailed(details)
