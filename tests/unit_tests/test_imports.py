"""The public API is exactly what ``__all__`` says, and every name in it resolves."""

from __future__ import annotations

import langchain_afarensis_vision
from langchain_afarensis_vision import errors

EXPECTED = [
    "APIConnectionError",
    "APIResponseInfo",
    "APIStatusError",
    "APITimeoutError",
    "AfarensisDescribeImageTool",
    "AfarensisError",
    "AfarensisImageLoader",
    "AuthenticationError",
    "BadRequestError",
    "ChatAfarensis",
    "ImageSkippedWarning",
    "InternalServerError",
    "InvalidImageError",
    "MissingAPIKeyError",
    "NotFoundError",
    "PermissionDeniedError",
    "PreparedImage",
    "RateLimitError",
    "__version__",
    "estimate_image_tokens",
    "prepare_image",
]


def test_all() -> None:
    assert sorted(langchain_afarensis_vision.__all__) == sorted(EXPECTED)
    for name in EXPECTED:
        assert getattr(langchain_afarensis_vision, name) is not None


def test_lazy_names_are_exactly_all() -> None:
    lazy = set(langchain_afarensis_vision._MODULES)
    assert lazy | {"__version__"} == set(langchain_afarensis_vision.__all__)


def test_every_error_is_exported() -> None:
    # The tree itself is tested in test_errors.py.
    for name in errors.__all__:
        assert getattr(langchain_afarensis_vision, name) is getattr(errors, name)
