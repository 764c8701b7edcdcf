"""Request bodies checked against the wire contract, with errors that name the field.

The contract is ``CreateChatCompletionRequest`` of the vendored OpenAPI file, compiled once
into JSON Schema by :mod:`._schema`; one validator is kept. A refusal is a 400
``invalid_request_error`` / ``invalid_value`` whose ``param`` is the path of the offending
field, e.g. ``messages[0].content[1].image_url.url``.

Beyond the schema, the server refuses what the real API refuses although the schema lets it
through: top-level arguments the API does not know, and content parts this model cannot read
(audio and files). Before the schema is even looked at, a request is held to the server's caps:
at most :data:`~.settings.MAX_CONTENT_PARTS` content parts and :data:`~.settings.MAX_IMAGES`
images (the bounds on the JSON itself are :mod:`._json`'s).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import jsonschema

from langchain_afarensis_vision.server._errors import APIError, invalid_value
from langchain_afarensis_vision.server._schema import request_schema, spec_defs
from langchain_afarensis_vision.server.settings import MAX_CONTENT_PARTS, MAX_IMAGES

_UNSUPPORTED_PARTS = {"input_audio": "audio", "file": "file"}
_DISCRIMINATORS = frozenset({"role", "type"})
_LONG = 1024
_RELEVANCE = jsonschema.exceptions.relevance


@functools.cache
def _validator() -> Any:
    return jsonschema.Draft202012Validator(request_schema(), format_checker=None)


@functools.cache
def known_arguments() -> frozenset[str]:
    """The top-level request arguments the contract defines."""
    names: set[str] = set()
    stack = [spec_defs()["CreateChatCompletionRequest"]]
    while stack:
        node = stack.pop()
        if "$ref" in node:
            node = spec_defs()[node["$ref"].rsplit("/", 1)[-1]]
        names.update(node.get("properties", {}))
        stack += node.get("allOf", [])
    return frozenset(names)


def param_path(path: Iterable[str | int]) -> str | None:
    """``["messages", 0, "content"]`` as ``messages[0].content`` (None for the root)."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or None


def validate_request(body: dict[str, Any]) -> None:
    """Refuse a body that breaks ``CreateChatCompletionRequest`` or that the model cannot read."""
    unknown = sorted(set(body) - known_arguments())
    if unknown:
        raise invalid_value(f"Unrecognized request argument supplied: {unknown[0]}", unknown[0])
    messages = body.get("messages")
    if isinstance(messages, list):
        _count_parts(messages)
        _count_images(messages)
    _check_parts(messages)
    error = _best_error(_validator().iter_errors(_shrink(body)))
    if error is not None:
        raise _as_api_error(error)


def _content(message: Any) -> Any:
    return message.get("content") if isinstance(message, dict) else None


def _count_parts(messages: list[Any]) -> None:
    """Refuse more than :data:`MAX_CONTENT_PARTS` content parts (a string content is one)."""
    parts = 0
    for i, message in enumerate(messages):
        content = _content(message)
        parts += len(content) if isinstance(content, list) else 1
        if parts > MAX_CONTENT_PARTS:
            msg = (
                f"Too many content parts: a request may carry at most {MAX_CONTENT_PARTS:,}, "
                "all messages together."
            )
            raise invalid_value(msg, f"messages[{i}].content")


def _count_images(messages: list[Any]) -> None:
    """Refuse more than :data:`MAX_IMAGES` image parts, naming the first one too many."""
    images = 0
    for i, message in enumerate(messages):
        content = _content(message)
        for j, part in enumerate(content if isinstance(content, list) else ()):
            images += isinstance(part, dict) and part.get("type") == "image_url"
            if images > MAX_IMAGES:
                msg = f"Too many images: a request may carry at most {MAX_IMAGES}."
                raise invalid_value(msg, f"messages[{i}].content[{j}]")


def _check_parts(messages: Any) -> None:
    """Clear messages for parts the schema refuses only vaguely, or accepts but the model can't."""
    if not isinstance(messages, list):
        return
    for i, message in enumerate(messages):
        content = _content(message)
        if not isinstance(content, list):
            continue
        role = message.get("role")
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            param = f"messages[{i}].content[{j}]"
            if kind == "image_url" and role != "user":
                msg = f"Image content parts are only accepted in user messages, not in {role!r}."
                raise invalid_value(msg, param)
            if kind in _UNSUPPORTED_PARTS and role == "user":
                msg = f"gpt-4-vision-preview does not accept {_UNSUPPORTED_PARTS[kind]} input."
                raise invalid_value(msg, param)


def _shrink(node: Any) -> Any:
    """A copy with long strings (inline images) cut to :data:`_LONG` + 1 characters.

    The schema never looks inside such strings (formats are not checked, and no ``maxLength``
    exceeds :data:`_LONG`), but jsonschema formats failing instances into messages eagerly,
    and every ``oneOf`` branch that does not match would copy a 20 MB data URL.
    """
    if isinstance(node, str):
        return node if len(node) <= _LONG else node[: _LONG + 1]
    if isinstance(node, list):
        return [_shrink(item) for item in node]
    if isinstance(node, dict):
        return {key: _shrink(value) for key, value in node.items()}
    return node


def _best_error(errors: Iterable[jsonschema.ValidationError]) -> jsonschema.ValidationError | None:
    errors = list(errors)
    return _narrow(max(errors, key=_RELEVANCE)) if errors else None


def _narrow(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """Descend a ``oneOf``/``anyOf`` failure into the one branch meant (by type/role/``type``)."""
    if not error.context:
        return error
    meant = [errs for errs in _branches(error) if not any(_misses(sub) for sub in errs)]
    if len(meant) == 1:
        return _narrow(max(meant[0], key=_RELEVANCE))
    if not meant:
        return _no_branch(error)
    return error


def _branches(error: jsonschema.ValidationError) -> list[list[jsonschema.ValidationError]]:
    """The errors of each branch of a failed ``oneOf``/``anyOf``."""
    branches: dict[Any, list[jsonschema.ValidationError]] = {}
    for sub in error.context or []:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    return list(branches.values())


def _type_misses(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """The root ``type`` errors of a failed ``oneOf``/``anyOf`` (nested ones included)."""
    found = []
    for sub in error.context or []:
        if not sub.relative_path and sub.validator == "type":
            found.append(sub)
        elif not sub.relative_path and sub.validator in {"anyOf", "oneOf"}:
            found += _type_misses(sub)
    return found


def _no_branch(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """A clearer error when no branch was meant: a wrong type or an unknown role/type value."""
    context = error.context or []
    misses = _type_misses(error)
    if all(any(sub in misses or sub.context for sub in errs) for errs in _branches(error)):
        types = sorted({str(t) for sub in misses for t in _listed(sub.validator_value)})
        return _error(f"{error.instance!r} is not of type {' or '.join(types)}", error.path)
    for key in sorted(_DISCRIMINATORS):
        values = [
            value
            for sub in context
            if list(sub.relative_path) == [key] and sub.validator in {"enum", "const"}
            for value in _listed(sub.validator_value)
        ]
        if values and isinstance(error.instance, dict) and key in error.instance:
            supported = ", ".join(repr(v) for v in dict.fromkeys(values))
            message = f"{error.instance[key]!r} is not supported; use one of {supported}"
            return _error(message, [*error.path, key])
    return error


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _error(message: str, path: Iterable[str | int]) -> jsonschema.ValidationError:
    return jsonschema.ValidationError(message, path=list(path))


def _misses(error: jsonschema.ValidationError) -> bool:
    """Whether ``error`` shows its branch is not the one meant: wrong type or discriminator."""
    path = list(error.relative_path)
    if not path and error.validator == "type":
        return True
    if not path and error.validator in {"anyOf", "oneOf"}:
        return all(any(_misses(sub) for sub in errs) for errs in _branches(error))
    if not path and error.validator == "required":
        return any(name in _DISCRIMINATORS for name in _missing(error))
    return len(path) == 1 and path[0] in _DISCRIMINATORS and error.validator in {"enum", "const"}


def _missing(error: jsonschema.ValidationError) -> list[str]:
    instance = error.instance if isinstance(error.instance, dict) else {}
    return [name for name in error.validator_value if name not in instance]


def _as_api_error(error: jsonschema.ValidationError) -> APIError:
    path: list[str | int] = list(error.absolute_path)
    if error.validator == "required" and (missing := _missing(error)):
        path.append(missing[0])
        return invalid_value(f"Missing required parameter: '{param_path(path)}'.", param_path(path))
    param = param_path(path)
    message = error.message if len(error.message) <= 300 else error.message[:300] + "..."
    return invalid_value(f"Invalid value for '{param or 'body'}': {message}", param)
