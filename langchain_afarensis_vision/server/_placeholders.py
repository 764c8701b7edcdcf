"""A deterministic minimal instance of a JSON schema: the values of placeholder fields.

The offline engine cannot choose real values, so a field of a forced tool call or a
``json_schema`` answer that it did not measure (see :mod:`._filling`) and that has no default
and does not allow null carries the simplest value the schema accepts: the ``const``, the
``default`` or the first ``enum`` value when there is one, else ``""`` (or ``minLength`` times
``"x"``), ``0`` (or the minimum), ``false``, ``null``, an empty array (or ``minItems`` items),
and an object with its ``required`` properties only (all of them when strict mode lists every
one). ``$ref`` to ``#/$defs/...`` or ``#/definitions/...``, ``anyOf``/``oneOf`` (first non-null
branch) and ``allOf`` (merged) are followed; recursion stops at :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import math
from typing import Any, Final

MAX_DEPTH: Final = 12

_EMPTY_BY_TYPE: Final[dict[str, Any]] = {"boolean": False, "null": None}


def placeholder(schema: Any, root: dict[str, Any] | None = None) -> Any:
    """The minimal instance of ``schema`` (a JSON-schema dict; anything else gives ``None``).

    ``root`` is the document its ``$ref`` point into (``schema`` itself by default).
    """
    if root is None:
        root = schema if isinstance(schema, dict) else {}
    return _instance(schema, root, 0)


def target(schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    """The schema a value for ``schema`` is built from (``{}`` when there is none).

    Its ``$ref``, ``allOf`` and first non-null ``anyOf``/``oneOf`` branch are followed.
    """
    for _ in range(MAX_DEPTH):
        if not isinstance(schema, dict):
            return {}
        if "$ref" in schema:
            schema = resolve(schema["$ref"], root)
        elif isinstance(schema.get("allOf"), list):
            schema = _merged(schema, root)
        elif branches := next(
            (schema[key] for key in ("anyOf", "oneOf") if isinstance(schema.get(key), list)), None
        ):
            schema = _first_branch(branches, root)
        else:
            return schema
    return {}


def nullable(schema: Any, root: dict[str, Any]) -> bool:
    """Whether ``schema`` accepts ``null`` (a ``null`` type or branch, or OpenAPI ``nullable``)."""
    for _ in range(MAX_DEPTH):
        schema = _deref(schema, root)
    if not isinstance(schema, dict):
        return False
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind) or schema.get("nullable"):
        return True
    branches = [b for key in ("anyOf", "oneOf") for b in schema.get(key) or []]
    return any(_is_null(branch, root) for branch in branches)


def _is_null(branch: Any, root: dict[str, Any]) -> bool:
    """Whether an ``anyOf``/``oneOf`` branch is the ``null`` type."""
    node = _deref(branch, root)
    return isinstance(node, dict) and node.get("type") == "null"


def _instance(schema: Any, root: dict[str, Any], depth: int) -> Any:
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return None
    if "$ref" in schema:
        return _instance(resolve(schema["$ref"], root), root, depth + 1)
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return _instance(_first_branch(schema[key], root), root, depth + 1)
    if isinstance(schema.get("allOf"), list):
        return _instance(_merged(schema, root), root, depth + 1)
    return _typed(schema, _type_of(schema), root, depth)


def _merged(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """An ``allOf`` schema as one schema."""
    merged = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema["allOf"]:
        part = _deref(part, root)
        merged = _merge(merged, part if isinstance(part, dict) else {})
    return merged


def _typed(schema: dict[str, Any], kind: str | None, root: dict[str, Any], depth: int) -> Any:
    if kind == "object":
        required = schema.get("required") or []
        properties = schema.get("properties") or {}
        return {name: _instance(properties.get(name, {}), root, depth + 1) for name in required}
    if kind == "array":
        count = int(schema.get("minItems") or 0)
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        return [_instance(items, root, depth + 1) for _ in range(count)]
    if kind == "string":
        return "x" * int(schema.get("minLength") or 0)
    if kind in {"integer", "number"}:
        return _number(schema, integer=kind == "integer")
    return _EMPTY_BY_TYPE.get(kind or "null")


def _type_of(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        return kinds[0] if kinds else "null"
    if isinstance(kind, str):
        return kind
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return None


def _number(schema: dict[str, Any], *, integer: bool) -> int | float:
    """0, moved into ``[minimum, maximum]`` (exclusive bounds by one), then up to ``multipleOf``."""
    low, high = schema.get("minimum"), schema.get("maximum")
    if isinstance(schema.get("exclusiveMinimum"), int | float):
        low = math.floor(schema["exclusiveMinimum"]) + 1
    if isinstance(schema.get("exclusiveMaximum"), int | float):
        high = math.ceil(schema["exclusiveMaximum"]) - 1
    value: int | float = 0
    if isinstance(low, int | float) and value < low:
        value = math.ceil(low) if integer else low
    elif isinstance(high, int | float) and value > high:
        value = math.floor(high) if integer else high
    step = schema.get("multipleOf")
    if isinstance(step, int | float) and step > 0 and value % step:
        value = math.ceil(value / step) * step
    return int(value) if integer else value


def _first_branch(branches: list[Any], root: dict[str, Any]) -> Any:
    for branch in branches:
        node = _deref(branch, root)
        if isinstance(node, dict) and node.get("type") != "null":
            return branch
    return branches[0]


def _deref(node: Any, root: dict[str, Any]) -> Any:
    """``node``, or what it refers to when it is a ``$ref``."""
    return resolve(node["$ref"], root) if isinstance(node, dict) and "$ref" in node else node


def resolve(ref: Any, root: dict[str, Any]) -> Any:
    """A local ``#/...`` reference inside ``root`` (anything else resolves to ``{}``)."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        return {}
    node: Any = root
    for part in ref.lstrip("#").strip("/").split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def _merge(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    merged = {**left, **right}
    properties = {**(left.get("properties") or {}), **(right.get("properties") or {})}
    if properties:
        merged["properties"] = properties
    required = [*(left.get("required") or []), *(right.get("required") or [])]
    if required:
        merged["required"] = list(dict.fromkeys(required))
    return merged
