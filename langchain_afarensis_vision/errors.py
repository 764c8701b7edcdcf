"""Exceptions raised by langchain-afarensis-vision.

The tree::

    AfarensisError                 .message, .response (None or APIResponseInfo), .request_id
    ├── MissingAPIKeyError         no key configured: set AFARENSIS_API_KEY or pass api_key=
    ├── RequestTooLargeError       costs more tokens than the rate limit allows in a minute
    ├── OutputInUseError           another corpus run is writing the same output file
    ├── InvalidRequestError        refused before sending, also a ValueError; .code (an ErrorCode)
    │   ├── InvalidImageError      an image that cannot be sent; .code says why
    │   └── InvalidDocumentError   a PDF or page that cannot be read; .source, .page
    ├── APIConnectionError         no response: DNS, refused, reset, dropped mid-stream
    │   └── APITimeoutError        no response in time
    └── APIStatusError             the API answered with an error status
        ├── BadRequestError        400 (a bad body or a bad image: see .code)
        ├── AuthenticationError    401
        ├── PermissionDeniedError  403
        ├── NotFoundError          404 (e.g. model_not_found)
        ├── RateLimitError         429 (.retry_after in seconds), or a pause over max_retry_after
        └── InternalServerError    5xx

Handle them the way the Afarensis docs do::

    try:
        model.invoke(messages)
    except AfarensisError as error:
        if error.response:
            print(error.response.status, error.response.data)
        else:
            print(error.message)

``InvalidRequestError`` is everything the client refuses before sending, with the code the API
would answer with: an unknown ``detail``, an image URL that is not http(s) or data: (a local
path, ``file://``), an image outside user and tool messages, a content block or message type the
API does not take (``invalid_value``), and bad images (:class:`InvalidImageError`). Only
programming errors in arguments (a constructor's ``max_concurrency=0``, ``prepare_image`` given
an object that is no image source) stay plain ``ValueError``/``TypeError``.

``request_id`` is the ``x-request-id`` the API answered with (None without an answer): quote it
when asking the API's operators about a failed call. It is also shown in the message.

No exception text, repr or attribute ever carries the API key: response headers are kept
without ``authorization`` and ``cookie`` fields, request headers are not kept at all, and a key
the server echoes back (in its error body or a header) is masked as ``[API key]``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from langchain_afarensis_vision._api.contract import (
    REQUEST_ID_HEADER,
    Detail,
    ErrorCode,
    check_detail,
    lone_surrogate,
)
from langchain_afarensis_vision._api.redaction import mask

__all__ = [
    "APIConnectionError",
    "APIResponseInfo",
    "APIStatusError",
    "APITimeoutError",
    "AfarensisError",
    "AuthenticationError",
    "BadRequestError",
    "InternalServerError",
    "InvalidDocumentError",
    "InvalidImageError",
    "InvalidRequestError",
    "MissingAPIKeyError",
    "NotFoundError",
    "OutputInUseError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTooLargeError",
]

_SECRET_HEADERS = frozenset({"authorization", "cookie", "set-cookie", "x-api-key", "api-key"})
_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII, no spaces, at most 128


@dataclass(frozen=True)
class APIResponseInfo:
    """What the API answered: ``status``, the parsed error body ``data``, and ``headers``."""

    status: int
    data: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls, status: int, data: Any, headers: Mapping[str, str], secret: str | None = None
    ) -> APIResponseInfo:
        """Build one, dropping any header that could carry a secret.

        ``secret`` (the key that was sent) is masked wherever the body or the other headers
        echo it.
        """
        kept = {k.lower(): v for k, v in headers.items() if k.lower() not in _SECRET_HEADERS}
        return cls(status=status, data=mask(data, secret), headers=mask(kept, secret))

    @property
    def request_id(self) -> str | None:
        """The ``x-request-id`` header, if the API sent a sane one (printable, at most 128)."""
        return request_id(self.headers)


def request_id(headers: Mapping[str, str]) -> str | None:
    """The ``x-request-id`` in ``headers`` (any case), if it is printable ASCII of at most 128."""
    value = _header(headers, REQUEST_ID_HEADER)
    return value if value is not None and _REQUEST_ID.fullmatch(value) else None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds an answer's headers ask to wait: ``retry-after-ms``, else ``Retry-After``.

    ``Retry-After`` may be seconds or an HTTP date (seconds from now until then, 0 if past).
    None when neither is there or says a finite, non-negative time (``inf``, ``nan``, ``-1``,
    a date that is no date): such a value is ignored, never waited for.
    """
    millis = _seconds(_header(headers, "retry-after-ms"))
    if millis is not None:
        return millis / 1000
    value = _header(headers, "retry-after")
    if (seconds := _seconds(value)) is not None or value is None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)  # "-0000": UTC, says RFC 5322
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` (lower case) in ``headers``, whatever case they use."""
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def _seconds(value: str | None) -> float | None:
    """``value`` as a finite, non-negative number, else None."""
    try:
        seconds = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


class AfarensisError(Exception):
    """Base class of every error this package raises.

    ``request_id`` is the API's ``x-request-id`` for the answer (``response``'s, or given for
    an answer that broke off), None when there was no answer; ``message`` ends with it.
    """

    def __init__(
        self,
        message: str,
        *,
        response: APIResponseInfo | None = None,
        request_id: str | None = None,
    ) -> None:
        self.request_id = request_id or (response.request_id if response else None)
        if self.request_id:
            message = f"{message} (request id {self.request_id})"
        super().__init__(message)
        self.message = message
        self.response = response


class MissingAPIKeyError(AfarensisError):
    """No API key is configured, so no request can be made (every one would fail alike)."""


class RequestTooLargeError(AfarensisError, ValueError):
    """A request that costs more tokens than the rate limit allows in a whole minute."""


class OutputInUseError(AfarensisError):
    """Another corpus run is writing the output file; nothing was read or sent.

    A second writer would send every image again and cross its lines: wait for that run (or
    stop it), or write to another file.
    """


class InvalidRequestError(AfarensisError, ValueError):
    """A request the client refuses to send; raised before anything reaches the network.

    ``code`` is the API's own error code for the same problem (``invalid_value`` for a bad
    field, a content block or a message it does not take).
    """

    def __init__(self, message: str, *, code: ErrorCode = ErrorCode.INVALID_VALUE) -> None:
        super().__init__(message)
        self.code = code


class InvalidImageError(InvalidRequestError):
    """An image that cannot be sent; raised before anything reaches the network.

    ``code`` is the API's own error code for the same problem: ``invalid_image_format``,
    ``image_too_large``, ``animated_gif_not_supported`` or ``invalid_image``.
    """

    def __init__(self, message: str, *, code: ErrorCode = ErrorCode.INVALID_IMAGE) -> None:
        super().__init__(message, code=code)


class InvalidDocumentError(InvalidRequestError):
    """A document (a PDF, or an image file given as a document) whose pages cannot be read.

    ``source`` is the file, ``page`` the 1-based page (None: the whole file). Raised before
    anything reaches the network; in an index run, the file is listed and the others go on.
    """

    def __init__(self, message: str, *, source: str, page: int | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.page = page

    def __reduce__(self) -> tuple[Any, ...]:  # from a worker process, whole
        return _rebuilt_document_error, (self.message, self.source, self.page)


def _rebuilt_document_error(message: str, source: str, page: int | None) -> InvalidDocumentError:
    return InvalidDocumentError(message, source=source, page=page)


class APIConnectionError(AfarensisError):
    """The request got no complete response (connection refused, reset or dropped)."""


class APITimeoutError(APIConnectionError):
    """The request timed out."""


class APIStatusError(AfarensisError):
    """The API answered with an error status; ``code``, ``type``, ``param`` come from its body."""

    def __init__(self, message: str, *, response: APIResponseInfo) -> None:
        super().__init__(message, response=response)
        body = response.data.get("error") if isinstance(response.data, dict) else None
        body = body if isinstance(body, dict) else {}
        self.status_code = response.status
        self.code: str | None = body.get("code")
        self.type: str | None = body.get("type")
        self.param: str | None = body.get("param")


class BadRequestError(APIStatusError):
    """400: the request body or an image in it was refused."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or wrong."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not use this resource."""


class NotFoundError(APIStatusError):
    """404: e.g. an unknown model."""


class RateLimitError(APIStatusError):
    """429: over the requests or tokens per minute.

    ``retry_after`` is the seconds the API asked to wait (:func:`retry_after_seconds`), None if
    it named no sane time. :class:`~.rate_limiters.AfarensisRateLimiter` raises one too, instead
    of pausing longer than its ``max_retry_after``: ``response`` is then the 429 that asked
    for the pause, and ``retry_after`` the part of it still to come.
    """

    def __init__(
        self, message: str, *, response: APIResponseInfo, retry_after: float | None = None
    ) -> None:
        super().__init__(message, response=response)
        if retry_after is None:
            retry_after = retry_after_seconds(response.headers)
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """5xx: a transient server failure (retried automatically)."""


EVERY_REQUEST_FAILS: tuple[type[AfarensisError], ...] = (
    MissingAPIKeyError,
    AuthenticationError,
    PermissionDeniedError,
    NotFoundError,
)
"""Errors every request would hit alike (no key, a wrong key, no access, no such model): a
batch (the loader, the corpus job) stops on them instead of skipping image after image."""

_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}


def status_error_class(status: int) -> type[APIStatusError]:
    """The exception class for an HTTP error status."""
    if status >= 500:
        return InternalServerError
    return _BY_STATUS.get(status, APIStatusError)


def check_text(body: Any) -> None:
    """Raise an :class:`InvalidRequestError` if a string in ``body`` holds a lone surrogate."""
    if (where := lone_surrogate(body)) is not None:
        msg = (
            f"{where} holds a lone surrogate, which is not Unicode text and cannot be sent: "
            "remove it, or decode the bytes it came from with errors='replace'."
        )
        raise InvalidRequestError(msg)


def checked_detail(detail: str) -> Detail:
    """``detail`` as a :data:`~._api.contract.Detail`, or an :class:`InvalidRequestError`."""
    try:
        return check_detail(detail)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None
