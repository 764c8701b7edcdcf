"""Exceptions raised by langchain-afarensis-vision.

The tree::

    AfarensisError                 .message, .response (None or APIResponseInfo)
    ├── MissingAPIKeyError         no key configured: set AFARENSIS_API_KEY or pass api_key=
    ├── RequestTooLargeError       costs more tokens than the rate limit allows in a minute
    ├── InvalidImageError          client side, also a ValueError; .code (an ErrorCode) says why
    ├── APIConnectionError         no response: DNS, refused, reset, dropped mid-stream
    │   └── APITimeoutError        no response in time
    └── APIStatusError             the API answered with an error status
        ├── BadRequestError        400 (a bad body or a bad image: see .code)
        ├── AuthenticationError    401
        ├── PermissionDeniedError  403
        ├── NotFoundError          404 (e.g. model_not_found)
        ├── RateLimitError         429 (.retry_after in seconds, when the API sent it)
        └── InternalServerError    5xx

Handle them the way the Afarensis docs do::

    try:
        model.invoke(messages)
    except AfarensisError as error:
        if error.response:
            print(error.response.status, error.response.data)
        else:
            print(error.message)

No exception text, repr or attribute ever carries the API key: response headers are kept
without ``authorization`` and ``cookie`` fields, request headers are not kept at all, and a key
the server echoes back (in its error body or a header) is masked as ``[API key]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_afarensis_vision._contract import ErrorCode
from langchain_afarensis_vision._redact import mask

__all__ = [
    "APIConnectionError",
    "APIResponseInfo",
    "APIStatusError",
    "APITimeoutError",
    "AfarensisError",
    "AuthenticationError",
    "BadRequestError",
    "InternalServerError",
    "InvalidImageError",
    "MissingAPIKeyError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTooLargeError",
]

_SECRET_HEADERS = frozenset({"authorization", "cookie", "set-cookie", "x-api-key", "api-key"})


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


class AfarensisError(Exception):
    """Base class of every error this package raises."""

    def __init__(self, message: str, *, response: APIResponseInfo | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.response = response


class MissingAPIKeyError(AfarensisError):
    """No API key is configured, so no request can be made (every one would fail alike)."""


class RequestTooLargeError(AfarensisError, ValueError):
    """A request that costs more tokens than the rate limit allows in a whole minute."""


class InvalidImageError(AfarensisError, ValueError):
    """An image that cannot be sent; raised before anything reaches the network.

    ``code`` is the API's own error code for the same problem: ``invalid_image_format``,
    ``image_too_large``, ``animated_gif_not_supported`` or ``invalid_image``.
    """

    def __init__(self, message: str, *, code: ErrorCode = ErrorCode.INVALID_IMAGE) -> None:
        super().__init__(message)
        self.code = code


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
    """429: over the requests or tokens per minute."""

    @property
    def retry_after(self) -> float | None:
        """Seconds the API asked to wait, from the ``Retry-After`` header, if any.

        None too when the header is not a finite, non-negative number of seconds.
        """
        assert self.response is not None
        value = self.response.headers.get("retry-after")
        try:
            seconds = float(value) if value is not None else None
        except ValueError:
            return None
        if seconds is None or not math.isfinite(seconds) or seconds < 0:
            return None
        return seconds


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
