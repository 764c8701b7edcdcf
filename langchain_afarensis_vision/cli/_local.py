"""Where the CLI's requests go: the configured API, or (only when asked) the local server.

Without the ``server`` extra the local server cannot start: the CLI says so in one line (which
extra, and how to install it), as it names the variable to set when no key is configured.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from langchain_afarensis_vision._api.contract import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL

if TYPE_CHECKING:
    from types import ModuleType

    from langchain_afarensis_vision.chat_models import ChatAfarensis

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
"""Some image failed or was refused (or the run stopped before the end)."""
EXIT_USAGE: Final = 2
"""Nothing was attempted: the command line or the setup is wrong."""

LOG_LEVELS: Final = ("debug", "info", "warning", "error")


class UsageError(Exception):
    """The command cannot run as given: one line for the user, exit code 2."""


def local_server_module() -> ModuleType:
    """``langchain_afarensis_vision.server``, or a :class:`UsageError` naming the extra."""
    try:
        from langchain_afarensis_vision import server
    except ImportError as missing:  # its message names the extra and how to install it
        raise UsageError(str(missing)) from None
    return server


@dataclass(frozen=True)
class Target:
    """The model to ask, and the API base URL to name when it cannot be reached (None: local)."""

    model: ChatAfarensis
    base_url: str | None


@contextlib.contextmanager
def connect(local: bool, why: str = "--local was given", **options: Any) -> Iterator[Target]:
    """A model for the configured API or, with ``local``, for an embedded local server.

    ``options`` are :class:`ChatAfarensis` fields (``model``, ``max_tokens``...). Without
    ``local`` a key must be configured: nothing falls back to offline answers silently.
    """
    from langchain_afarensis_vision.chat_models import ChatAfarensis

    if not local:
        if not os.environ.get(API_KEY_ENV):
            msg = (
                f"no API key: set {API_KEY_ENV} (and {BASE_URL_ENV} for another endpoint than "
                f"{DEFAULT_BASE_URL}), or pass --local for the embedded local server's offline "
                "answers"
            )
            raise UsageError(msg)
        model = ChatAfarensis(**options)
        yield Target(model, model.base_url)
        return
    server = local_server_module()
    with server.LocalAfarensisServer() as running:
        print(
            f"Using the embedded local Afarensis server at {running.base_url} ({why}): "
            "answers come from its offline engine, not GPT-4V.",
            file=sys.stderr,
        )
        model = ChatAfarensis(base_url=running.base_url, api_key=running.api_key, **options)
        yield Target(model, None)


def serve(args: argparse.Namespace) -> int:
    """``afarensis-vision serve``: requests logged on stderr at ``--log-level``."""
    server = local_server_module()
    stop = threading.Event()
    on_main_thread = threading.current_thread() is threading.main_thread()
    if on_main_thread:  # SIGTERM stops it as Ctrl+C does
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        code: int = server.serve_main(
            args.host,
            args.port,
            args.api_key,
            args.rpm,
            args.tpm,
            allow_private_urls=args.allow_private_urls,
            log_level=args.log_level,
            stop=stop,
        )
    except OSError as error:  # the port is taken, the host is not this machine's...
        reason = error.strerror or error
        msg = f"cannot listen on {args.host}:{args.port}: {reason} (--port 0 picks a free port)"
        raise UsageError(msg) from None
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return code
