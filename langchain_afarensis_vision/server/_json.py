r"""Request bodies parsed as JSON within bounds, so that no body holds the interpreter for long.

Python's ``json`` parses in C without ever letting another thread run, in time and memory
proportional to the number of values it builds; nesting past the recursion limit raises
``RecursionError``. So a body is first *scanned* (a loop of ``bytes.find``/``bytes.count`` calls
and bounded regular-expression steps, each short, so the event loop keeps its turn) and refused
with a 400 ``invalid_value`` before it is parsed when it holds more than :data:`MAX_JSON_VALUES`
values or nests deeper than :data:`MAX_JSON_DEPTH`. The scan also finds the long strings (the
inline images' data URLs): they are cut out of the text that ``json`` parses (replaced by
placeholders, then put back) and decoded on their own, a window at a time, so that a 100 MB
body does not keep the parser (or the interpreter's lock) for a noticeable time either.

As it is parsed, an object with more than :data:`MAX_JSON_KEYS` keys is refused (before the
schema ever walks it); once parsed, a body with a ``\u`` escape is searched for lone UTF-16
surrogates, which no text may hold (a 400 naming the field, never a 500 later on).
"""

from __future__ import annotations

import codecs
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Final

from langchain_afarensis_vision.server._errors import invalid_value
from langchain_afarensis_vision.server._validation import param_path
from langchain_afarensis_vision.server.settings import (
    MAX_JSON_DEPTH,
    MAX_JSON_KEYS,
    MAX_JSON_VALUES,
)

LONG_STRING: Final = 4096
"""Strings at least this long (in bytes) are decoded apart from the rest of the body."""
_CHUNK: Final = 1024 * 1024
_WINDOW: Final = 1024 * 1024
"""Bytes of a long string decoded at once (each step holds the interpreter's lock briefly)."""
_ESCAPED = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)  # a string's body, escapes included
_BRACKETS = bytes(set(range(256)) - set(b"{}[]"))
_CONTROLS = bytes(range(0x20))  # never raw inside a JSON string
_QUOTE, _BACKSLASH = 0x22, 0x5C


def parse_json(raw: bytes | bytearray) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 ``invalid_value``."""
    scan = _Scan(raw)
    scan.run()
    try:
        text = scan.skeleton() if scan.long else raw
        data = json.loads(text, object_pairs_hook=_object)
    except (ValueError, UnicodeDecodeError) as exc:
        msg = f"We could not parse the JSON body of your request ({exc})."
        raise invalid_value(msg) from None
    except RecursionError:  # not reached after the scan; kept as the last line of defence
        raise _too_deep() from None
    if not isinstance(data, dict):
        raise invalid_value("The request body must be a JSON object.")
    data = scan.restore(data) if scan.long else data
    if b"\\u" in raw:  # only an escape makes a lone surrogate
        _refuse_surrogates(data)
    return data


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len(pairs) > MAX_JSON_KEYS:
        msg = f"An object in the JSON body holds more than {MAX_JSON_KEYS:,} keys."
        raise invalid_value(msg)
    return dict(pairs)


def _refuse_surrogates(data: dict[str, Any]) -> None:
    r"""Refuse a key or string holding a lone surrogate (``"\ud800"``), naming where it is."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        node, path = stack.pop()
        for key, value in node.items() if isinstance(node, dict) else enumerate(node):
            if _lone_surrogate(key):
                raise _surrogate(path)
            if _lone_surrogate(value):
                raise _surrogate((*path, key))
            if isinstance(value, dict | list):
                stack.append((value, (*path, key)))


def _lone_surrogate(value: Any) -> bool:
    if not isinstance(value, str) or value.isascii():
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return True
    return False


def _surrogate(path: tuple[str | int, ...]) -> Exception:
    where = param_path(path)
    msg = (
        f"The JSON body holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape) "
        f"in {where or 'a key of the body'}: text must be valid Unicode."
    )
    return invalid_value(msg, where)


def _too_deep() -> Exception:
    return invalid_value(f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep.")


@dataclass
class _Scan:
    """One pass over the body: values and depth counted outside strings, long strings found."""

    raw: bytes | bytearray
    values: int = 0
    depth: int = 0
    long: list[tuple[int, int]] = field(default_factory=list)
    """``(start, end)`` of each long string value, quotes included."""
    nonce: str = field(default_factory=lambda: secrets.token_hex(8))

    def run(self) -> None:
        """Scan the whole body; raise a 400 as soon as a bound is passed."""
        at, end = 0, len(self.raw)
        while at < end:
            quote = self.raw.find(b'"', at)
            self._structure(at, end if quote < 0 else quote)
            if quote < 0:
                return
            closing = self._string_end(quote + 1)
            if closing < 0:
                return  # an unterminated string: json says so, with its position
            if closing - quote >= LONG_STRING:
                self.long.append((quote, closing + 1))
            at = closing + 1

    def _structure(self, start: int, stop: int) -> None:
        """Count the values between two strings, and follow the depth."""
        raw = self.raw
        opened = raw.count(b"{", start, stop) + raw.count(b"[", start, stop)
        self.values += opened + raw.count(b",", start, stop)
        if self.values > MAX_JSON_VALUES:
            msg = f"The JSON body holds more than {MAX_JSON_VALUES:,} values."
            raise invalid_value(msg)
        if self.depth + opened <= MAX_JSON_DEPTH:
            closed = raw.count(b"}", start, stop) + raw.count(b"]", start, stop)
            self.depth += opened - closed
            return
        for chunk in range(start, stop, _CHUNK):  # deep here: follow each bracket
            for byte in raw[chunk : min(stop, chunk + _CHUNK)].translate(None, _BRACKETS):
                self.depth += 1 if byte in b"{[" else -1
                if self.depth > MAX_JSON_DEPTH:
                    raise _too_deep()

    def _string_end(self, at: int) -> int:
        """The index of the quote that ends the string whose text starts at ``at`` (-1: none)."""
        raw = self.raw
        quote = raw.find(b'"', at)
        if quote < 0 or raw.find(b"\\", at, quote) < 0:
            return quote  # the usual case: no escape before the closing quote
        while at < len(raw):  # escapes: a bounded regular-expression step at a time
            step = _ESCAPED.match(raw, at, at + _CHUNK)  # always matches (maybe nothing)
            at = step.end() if step else len(raw)
            if at < len(raw) and raw[at] == _QUOTE:
                return at
            if at < len(raw) and raw[at] == _BACKSLASH and at + 1 == len(raw):
                return -1
        return -1

    def _placeholder(self, index: int) -> str:
        return f"\0{self.nonce}:{index}"

    def skeleton(self) -> bytes:
        """The body with each long string replaced by a short placeholder."""
        pieces, at = [], 0
        for index, (start, end) in enumerate(self.long):
            pieces += [self.raw[at:start], json.dumps(self._placeholder(index)).encode()]
            at = end
        pieces.append(self.raw[at:])
        return b"".join(pieces)

    def restore(self, data: dict[str, Any]) -> dict[str, Any]:
        """Put the long strings back where their placeholders are (keys too), decoded."""
        found = {self._placeholder(i): span for i, span in enumerate(self.long)}
        stack: list[Any] = [data]
        while stack:
            node = stack.pop()
            if isinstance(node, dict) and any(key in found for key in node):
                keys = [self._decode(*found[k]) if k in found else k for k in node]
                values = list(node.values())
                node.clear()
                node.update(zip(keys, values, strict=True))
            for key, value in node.items() if isinstance(node, dict) else enumerate(node):
                if isinstance(value, str) and value in found:
                    node[key] = self._decode(*found[value])
                elif isinstance(value, dict | list):
                    stack.append(value)
        return data

    def _decode(self, start: int, end: int) -> str:
        raw, first, last = self.raw, start + 1, end - 1
        try:
            if raw.find(b"\\", first, last) < 0:  # no escapes (base64): decoded a window at a time
                utf8 = codecs.getincrementaldecoder("utf-8")()
                pieces = []
                for at in range(first, last, _WINDOW):
                    window = raw[at : min(at + _WINDOW, last)]
                    if len(window.translate(None, _CONTROLS)) < len(window):
                        break  # a raw control character: json says where
                    pieces.append(utf8.decode(window, final=at + _WINDOW >= last))
                else:
                    return "".join(pieces)
            decoded = json.loads(raw[start:end])
        except (ValueError, UnicodeDecodeError) as exc:
            msg = f"We could not parse the JSON body of your request ({exc})."
            raise invalid_value(msg) from None
        assert isinstance(decoded, str)
        return decoded
