"""Keeping the API key out of what a server echoes back: error details and the HTTP library's logs.

A hostile or careless server may repeat the key it was sent, in an error body, a header or its
status line, as it is or encoded: percent-encoded (any of its characters, once or twice, hex
digits in either case) or in base64 (standard or URL-safe, at any offset in a longer encoded
text, as ``Basic`` credentials are). :func:`mask` replaces each form (with :data:`MASK`; of a
base64 form, all but the one or two characters at its ends that share bits with its neighbours)
in any parsed body or header mapping,
and :func:`remember` records the key a transport sends so that :class:`_LogRedactor`, a filter
installed on the httpx2 and httpcore2 loggers (which log status lines at INFO and the response
headers at DEBUG), masks it in their records before any handler sees them. The
:data:`_REMEMBERED` most recent keys are kept (a process rarely uses more than one or two).
"""

from __future__ import annotations

import base64
import functools
import logging
import re
import threading
from typing import Any, Final

__all__ = ["MASK", "mask", "remember"]

MASK: Final = "[API key]"
_REMEMBERED: Final = 16
_HTTP_LOGGERS: Final = (
    "httpx2",
    "httpcore2.connection",
    "httpcore2.http11",
    "httpcore2.http2",
    "httpcore2.proxy",
    "httpcore2.socks",
)


def mask(value: Any, secret: str | None) -> Any:
    """``value`` with ``secret`` replaced by :data:`MASK` in every string it holds.

    Strings, and the keys and items of dicts, lists and tuples, are masked; anything else is
    returned as is. An empty ``secret`` masks nothing.
    """
    if not secret:
        return value
    if isinstance(value, str):
        for form in _base64_forms(secret):
            value = value.replace(form, MASK)
        value = value.replace(secret, MASK)
        return _percent_form(secret).sub(MASK, value) if "%" in value else value
    if isinstance(value, dict):
        return {mask(k, secret): mask(v, secret) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask(item, secret) for item in value)
    return value


@functools.lru_cache(maxsize=2 * _REMEMBERED)
def _base64_forms(secret: str) -> tuple[str, ...]:
    """What base64 text holding ``secret`` at each of the three byte offsets always contains.

    At offset ``k`` the first characters mix the key's bits with the bytes before it, and the
    last with the bytes after: only the characters made of the key's bits alone are fixed.
    """
    raw = secret.encode("utf-8", "surrogatepass")
    forms: dict[str, None] = {}
    for k in range(3):
        encoded = base64.b64encode(bytes(k) + raw).decode()
        core = encoded[-(-8 * k // 6) : 8 * (k + len(raw)) // 6]
        if len(core) >= 8:  # a short key's core could be anyone's text
            forms[core] = forms[core.translate(_URL_SAFE)] = None
    return tuple(forms)


_URL_SAFE: Final = str.maketrans("+/", "-_")


@functools.lru_cache(maxsize=2 * _REMEMBERED)
def _percent_form(secret: str) -> re.Pattern[str]:
    """``secret`` with any of its characters percent-encoded, once or twice (``%2573``)."""

    def hex_digit(n: int) -> str:
        digit = f"{n:X}"
        return f"[{digit}{digit.lower()}]" if digit.isalpha() else digit

    def char(c: str) -> str:
        octets = c.encode("utf-8", "surrogatepass")
        encoded = "".join(f"%(?:25)?{hex_digit(b >> 4)}{hex_digit(b & 15)}" for b in octets)
        return f"(?:{re.escape(c)}|{encoded})"

    return re.compile("".join(char(c) for c in secret))


class _LogRedactor(logging.Filter):
    """Masks every remembered key in a record's message (the record is kept, never dropped).

    ``filter`` takes no lock: it may run anywhere a record is logged, garbage collection (a
    client closed by a finalizer) included, so it reads an immutable tuple swapped in whole.
    """

    def __init__(self) -> None:
        super().__init__()
        self._keys: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def remember(self, key: str) -> None:
        if not key or key in self._keys:
            return
        with self._lock:
            self._keys = (key, *self._keys)[:_REMEMBERED]

    def filter(self, record: logging.LogRecord) -> bool:
        keys = self._keys
        if not keys:
            return True
        try:
            message = original = record.getMessage()
        except Exception:  # a malformed record: logging reports it when a handler formats it
            return True
        for key in keys:
            message = mask(message, key)
        if message != original:
            record.msg, record.args = message, None
        return True


_REDACTOR: Final = _LogRedactor()
for _name in _HTTP_LOGGERS:
    logging.getLogger(_name).addFilter(_REDACTOR)  # does nothing until a key is remembered


def remember(key: str) -> None:
    """Mask ``key`` in the HTTP library's logs from now on (it is about to be sent)."""
    _REDACTOR.remember(key)
