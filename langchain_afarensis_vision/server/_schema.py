"""The request schema, compiled once from the vendored OpenAPI file into fast JSON Schema.

The contract is ``CreateChatCompletionRequest`` of ``openapi-chat-completions.json`` beside this
module (a verbatim copy of the published schema, MIT licensed: see ``SPEC_NOTICE.md``). OpenAPI
3.0 is not JSON Schema, so it is rewritten (``nullable`` becomes "or null", component refs become
``$defs`` refs), and then made cheap to check without changing what it accepts:

* every non-recursive ``$ref`` is inlined (no reference lookups per request);
* a ``oneOf`` whose branches are objects told apart by a one-value ``role`` or ``type``
  property (a discriminator, as messages, content parts, tools and response formats are) becomes
  a dispatch: that property must be one of the branches' values, and the branch it names must
  hold. For such branches "exactly one holds" and "the named one holds" are the same, but only
  one branch is checked, and its errors are reported as they are.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any, Final

SPEC_FILE: Final = "openapi-chat-completions.json"
DISCRIMINATORS: Final = ("role", "type")
_DROPPED: Final = frozenset({"nullable", "discriminator", "example", "description", "title"})


def convert(node: Any) -> Any:
    """Rewrite an OpenAPI 3.0 schema node as JSON Schema 2020-12."""
    if isinstance(node, list):
        return [convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {
        key: convert(value)
        for key, value in node.items()
        if key not in _DROPPED and not key.startswith("x-")
    }
    if isinstance(out.get("$ref"), str):
        out["$ref"] = out["$ref"].replace("#/components/schemas/", "#/$defs/")
    if node.get("nullable"):
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        out = {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def spec_defs() -> dict[str, Any]:
    """Every component schema of the vendored spec, converted."""
    text = resources.files(__package__).joinpath(SPEC_FILE).read_text(encoding="utf-8")
    spec = json.loads(text)
    return {name: convert(schema) for name, schema in spec["components"]["schemas"].items()}


@functools.cache
def request_schema() -> dict[str, Any]:
    """``CreateChatCompletionRequest``, inlined and dispatched, with ``$defs`` for any ref left."""
    defs = spec_defs()
    schema: dict[str, Any] = _inline(defs["CreateChatCompletionRequest"], defs, ())
    return {**schema, "$defs": defs}


def _inline(node: Any, defs: dict[str, Any], stack: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs, stack) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] not in stack:
        target = _inline(defs[ref[8:]], defs, (*stack, ref[8:]))
        rest = {key: value for key, value in node.items() if key != "$ref"}
        return {"allOf": [target, _inline(rest, defs, stack)]} if rest else target
    out = {key: _inline(value, defs, stack) for key, value in node.items()}
    return _dispatch(out)


def _dispatch(node: dict[str, Any]) -> dict[str, Any]:
    branches = node.get("oneOf")
    if not isinstance(branches, list) or len(branches) < 2:
        return node
    for key in DISCRIMINATORS:
        values = [_tag(branch, key) for branch in branches]
        if None in values or len(set(values)) != len(values):
            continue
        rest = {k: v for k, v in node.items() if k != "oneOf"}
        cases = [
            {"if": {"properties": {key: {"const": value}}}, "then": branch}
            for value, branch in zip(values, branches, strict=True)
        ]
        dispatch = {
            "type": "object",
            "required": [key],
            "properties": {key: {"enum": values}},
            "allOf": cases,
        }
        return {**rest, "allOf": [*rest.get("allOf", []), dispatch]} if rest else dispatch
    return node


def _tag(branch: Any, key: str) -> Any:
    """The one value ``branch`` allows for ``key``, if it is an object schema with one."""
    if not isinstance(branch, dict) or branch.get("type") != "object":
        return None
    enum = (branch.get("properties") or {}).get(key, {}).get("enum")
    if isinstance(enum, list) and len(enum) == 1 and key in branch.get("required", []):
        return enum[0]
    return None
