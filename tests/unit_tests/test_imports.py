"""The public API is exactly what ``__all__`` says, and every name in it resolves."""

from __future__ import annotations

import ast
import subprocess
import sys

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


def test_the_server_stands_apart_from_the_client() -> None:
    """Importing the local server loads the contract and the image rules, never the chat model."""
    code = (
        "import sys, langchain_afarensis_vision.server.app\n"
        "print(sorted(m for m in sys.modules if m.startswith(('langchain', 'PIL.EpsImagePlugin'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    modules = ast.literal_eval(loaded)
    assert not [m for m in modules if not m.startswith("langchain_afarensis_vision")]
    client = {"chat_models", "tools", "document_loaders", "images", "_messages", "_transport"}
    assert not [m for m in modules if m.rpartition(".")[2] in client]
    assert "langchain_afarensis_vision._sources.read" in modules


def test_url_policy_has_a_public_home() -> None:
    from langchain_afarensis_vision import UrlPolicy
    from langchain_afarensis_vision._sources.urls import UrlPolicy as Private

    assert UrlPolicy is Private


def test_the_ray_module_without_the_extra_says_how_to_install_it() -> None:
    """As the server does for its extra: one ImportError naming the extra and the command."""
    code = (
        "import sys\n"
        "sys.modules['ray'] = None  # as if the 'ray' extra were not installed\n"
        "try:\n"
        "    import langchain_afarensis_vision.ray\n"
        "except ImportError as error:\n"
        "    print(type(error).__name__, error)\n"
    )
    said = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert said.startswith("ImportError Describing datasets on Ray needs the 'ray' extra: ")
    assert 'pip install ".[ray]"' in said
