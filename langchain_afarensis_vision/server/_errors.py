"""The API's error answers: one exception type that knows its status, body and headers.

Every refusal the server makes is an :class:`APIError`; the routes turn it into a JSON response
whose body is an ``ErrorResponse`` (``{"error": {"message", "type", "param", "code"}}``) as the
API contract fixes it (``tests/data/spec/afarensis-vision-api.md`` in the repository, "Errors").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_afarensis_vision._api.contract import ErrorCode, ErrorType
from langchain_afarensis_vision.errors import InvalidImageError


class APIError(Exception):
    """A refusal: HTTP ``status``, the error body's fields, and extra response ``headers``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: ErrorType = ErrorType.INVALID_REQUEST,
        code: ErrorCode | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The ``ErrorResponse`` body."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def invalid_value(message: str, param: str | None = None) -> APIError:
    """A 400 ``invalid_request_error`` / ``invalid_value``: a bad body."""
    return APIError(400, message, code=ErrorCode.INVALID_VALUE, param=param)


def image_error(exc: InvalidImageError, param: str, *, prefix: bool = True) -> APIError:
    """A 400 for an image that was refused, with the refusal's own code."""
    message = f"Invalid image at {param}: {exc.message}" if prefix else exc.message
    return APIError(400, message, code=exc.code, param=param)


def unreachable(message: str, param: str) -> APIError:
    """A 400 ``image_url_unreachable``: the server could not download an image URL."""
    return APIError(400, message, code=ErrorCode.IMAGE_URL_UNREACHABLE, param=param)


def invalid_api_key(message: str) -> APIError:
    """A 401 ``authentication_error`` / ``invalid_api_key``."""
    return APIError(401, message, type=ErrorType.AUTHENTICATION, code=ErrorCode.INVALID_API_KEY)


def model_not_found(model: str) -> APIError:
    """A 404 ``model_not_found``."""
    message = f"The model `{model}` does not exist or you do not have access to it."
    return APIError(404, message, code=ErrorCode.MODEL_NOT_FOUND, param="model")


def rate_limited(message: str, headers: Mapping[str, str] | None = None) -> APIError:
    """A 429 ``rate_limit_exceeded``."""
    kind = ErrorType.RATE_LIMIT_EXCEEDED
    return APIError(429, message, type=kind, code=ErrorCode.RATE_LIMIT_EXCEEDED, headers=headers)


def server_error(status: int, message: str) -> APIError:
    """A 5xx ``server_error`` (transient; safe to retry)."""
    return APIError(status, message, type=ErrorType.SERVER)
