"""LangChain integration for Afarensis GPT-4 with Vision (``gpt-4-vision-preview``).

Names are imported on first use (PEP 562), so that importing a light module of the package
(``errors``, ``images``, or the local ``server``) does not load the chat model and LangChain.

The house follows the project's plan (a wing per concern; imports point cli, ray -> corpus,
tools, document_loaders, middleware -> chat_models -> images -> _sources -> errors -> _api;
``server`` uses only ``_api``, ``_sources`` and ``errors``), and differs where the code taught
better: ``_sources/opening.py`` and ``images/_pixels.py`` are rooms of their own (reading bytes
and opening images, deciding and encoding, are two concerns each); ``cli`` may start the local
``server`` (``--local``, ``demo``, ``serve``); ``_progress.py`` stays at the top (the loader,
the CLI and the corpus job share it); ``documents/`` comes with its issue.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from langchain_afarensis_vision import errors as _errors  # light: the exception classes only
from langchain_afarensis_vision._version import __version__

if TYPE_CHECKING:
    from langchain_afarensis_vision._api.contract import estimate_image_tokens, explain_image_tokens
    from langchain_afarensis_vision._sources.urls import UrlPolicy
    from langchain_afarensis_vision.chat_models import ChatAfarensis
    from langchain_afarensis_vision.corpus import (
        CorpusSummary,
        adescribe_images,
        describe_images,
    )
    from langchain_afarensis_vision.document_loaders import (
        AfarensisImageLoader,
        ImageSkippedWarning,
        NoImagesFoundWarning,
    )
    from langchain_afarensis_vision.errors import (
        AfarensisError,
        APIConnectionError,
        APIResponseInfo,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        InternalServerError,
        InvalidDocumentError,
        InvalidImageError,
        InvalidRequestError,
        MissingAPIKeyError,
        NotFoundError,
        OutputInUseError,
        PermissionDeniedError,
        RateLimitError,
        RequestTooLargeError,
    )
    from langchain_afarensis_vision.images import PreparedImage, prepare_image
    from langchain_afarensis_vision.middleware import ImageBudgetEdit, apply_image_budget
    from langchain_afarensis_vision.rate_limiters import AfarensisRateLimiter
    from langchain_afarensis_vision.tools import AfarensisDescribeImageTool

_MODULES: dict[str, str] = {
    "AfarensisDescribeImageTool": "tools",
    "AfarensisImageLoader": "document_loaders",
    "AfarensisRateLimiter": "rate_limiters",
    "ChatAfarensis": "chat_models",
    "CorpusSummary": "corpus",
    "adescribe_images": "corpus",
    "apply_image_budget": "middleware",
    "describe_images": "corpus",
    "ImageBudgetEdit": "middleware",
    "ImageSkippedWarning": "document_loaders",
    "NoImagesFoundWarning": "document_loaders",
    "PreparedImage": "images",
    "estimate_image_tokens": "_api.contract",
    "explain_image_tokens": "_api.contract",
    "prepare_image": "images",
    "UrlPolicy": "_sources.urls",
    **dict.fromkeys(_errors.__all__, "errors"),
}

__all__ = [
    "APIConnectionError",
    "APIResponseInfo",
    "APIStatusError",
    "APITimeoutError",
    "AfarensisDescribeImageTool",
    "AfarensisError",
    "AfarensisImageLoader",
    "AfarensisRateLimiter",
    "AuthenticationError",
    "BadRequestError",
    "ChatAfarensis",
    "CorpusSummary",
    "ImageBudgetEdit",
    "ImageSkippedWarning",
    "InternalServerError",
    "InvalidDocumentError",
    "InvalidImageError",
    "InvalidRequestError",
    "MissingAPIKeyError",
    "NoImagesFoundWarning",
    "NotFoundError",
    "OutputInUseError",
    "PermissionDeniedError",
    "PreparedImage",
    "RateLimitError",
    "RequestTooLargeError",
    "UrlPolicy",
    "__version__",
    "adescribe_images",
    "apply_image_budget",
    "describe_images",
    "estimate_image_tokens",
    "explain_image_tokens",
    "prepare_image",
]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
