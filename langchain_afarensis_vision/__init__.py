"""LangChain integration for Afarensis GPT-4 with Vision (``gpt-4-vision-preview``)."""

from langchain_afarensis_vision._contract import estimate_image_tokens
from langchain_afarensis_vision._version import __version__
from langchain_afarensis_vision.chat_models import ChatAfarensis
from langchain_afarensis_vision.document_loaders import AfarensisImageLoader, ImageSkippedWarning
from langchain_afarensis_vision.errors import (
    AfarensisError,
    APIConnectionError,
    APIResponseInfo,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    InvalidImageError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from langchain_afarensis_vision.images import PreparedImage, prepare_image
from langchain_afarensis_vision.tools import AfarensisDescribeImageTool

__all__ = [
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
    "NotFoundError",
    "PermissionDeniedError",
    "PreparedImage",
    "RateLimitError",
    "__version__",
    "estimate_image_tokens",
    "prepare_image",
]
