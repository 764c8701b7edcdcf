"""Keeping the API key out of what a server echoes back: error details and the HTTP library's logs.

A hostile or careless server may repeat the key it was sent, in an error body, a header or its
status line. :func:`mask` replaces it (with :data:`MASK`) in any parsed body or header mapping,
and :func:`remember` records the key a transport sends so that :class:`_LogRedactor`, a filter
installed on the httpx2 and httpcore2 loggers (which log status lines at INFO and the response
headers at DEBUG), masks it in their records before any handler sees them. The
:data:`_REMEMBERED` most recent keys are kept (a process rarely uses more than one or two).
"""

from __future__ import annotations

import logging
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
        return value.replace(secret, MASK)
    if isinstance(value, dict):
        return {mask(k, secret): mask(v, secret) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask(item, secret) for item in value)
    return value


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
