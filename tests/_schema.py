"""Validate bodies against the wire contract, the package's ``openapi-chat-completions.json``.

The spec is OpenAPI 3.0, whose ``nullable`` is not JSON Schema: it is rewritten into JSON Schema
2020-12 by the same ``convert`` the local server uses (its copy is pinned by SHA-256 in
``SPEC_NOTICE.md``), and a validator per component is cached.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema

from langchain_afarensis_vision.server._schema import convert
from tests._support import OPENAPI_SPEC


@functools.cache
def _defs() -> dict[str, Any]:
    spec = json.loads(OPENAPI_SPEC.read_text())
    return {name: convert(s) for name, s in spec["components"]["schemas"].items()}


@functools.cache
def validator(component: str) -> jsonschema.protocols.Validator:
    schema = {"$ref": f"#/$defs/{component}", "$defs": _defs()}
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=None)


def assert_valid(component: str, body: Any) -> None:
    """Raise ``jsonschema.ValidationError`` (with the path) if ``body`` breaks the contract."""
    errors = sorted(validator(component).iter_errors(body), key=lambda e: list(e.path))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise AssertionError(f"{component} invalid at {list(best.path)}: {best.message}")
