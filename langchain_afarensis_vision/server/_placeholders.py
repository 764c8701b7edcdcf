"""A deterministic minimal instance of a JSON schema: placeholder tool arguments and JSON answers.

The offline engine cannot choose real values, so a forced tool call or a ``json_schema`` answer
carries the simplest value the schema accepts: the ``const``, the ``default`` or the first
``enum`` value when there is one, else ``""`` (or ``minLength`` times ``"x"``), ``0`` (or the
minimum), ``false``, ``null``, an empty array (or ``minItems`` items), and an object with its
``required`` properties only (all of them when strict mode lists every one). ``$ref`` to
``#/$defs/...`` or ``#/definitions/...``, ``anyOf``/``oneOf`` (first non-null branch) and
``allOf`` (merged) are followed; recursion stops at :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import math
from typing import Any, Final

MAX_DEPTH: Final = 12

_EMPTY_BY_TYPE: Final[dict[str, Any]] = {"boolean": False, "null": None}


def placeholder(schema: Any) -> Any:
    """The minimal instance of ``schema`` (a JSON-schema dict; anything else gives ``None``)."""
    return _instance(schema, schema if isinstance(schema, dict) else {}, 0)


def _instance(schema: Any, root: dict[str, Any], depth: int) -> Any:
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return None
    if "$ref" in schema:
        return _instance(_resolve(schema["$ref"], root), root, depth + 1)
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return _instance(_first_branch(schema[key], root), root, depth + 1)
    if isinstance(schema.get("allOf"), list):
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = (
                _resolve(part["$ref"], root) if isinstance(part, dict) and "$ref" in part else part
            )
            merged = _merge(merged, part if isinstance(part, dict) else {})
        return _instance(merged, root, depth + 1)
    return _typed(schema, _type_of(schema), root, depth)


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
        target = (
            _resolve(branch["$ref"], root)
            if isinstance(branch, dict) and "$ref" in branch
            else branch
        )
        if isinstance(target, dict) and target.get("type") != "null":
            return branch
    return branches[0]


def _resolve(ref: Any, root: dict[str, Any]) -> Any:
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
