"""``afarensis-vision serve``: run the local server in the foreground until Ctrl+C.

The process is the server's: on glibc, blocks of a mebibyte or more (request bodies, images)
are mapped from the OS and given back to it when freed (``mallopt``), instead of being kept in
the heap once a large one has been freed (glibc's threshold grows up to 32 MiB otherwise). The
first request's one-time work (the tokenizer, the request schema, the modules a request
imports, the OCR models) is done before the server listens (:func:`warm_up`), so that it never
holds the interpreter's lock while other requests wait, and threads hand the interpreter's
lock on sooner (:data:`SWITCH_INTERVAL`).
"""

from __future__ import annotations

import asyncio
import base64
import ctypes
import io
import logging
import sys
import threading
from typing import Final

import httpx2
from PIL import Image

from langchain_afarensis_vision._api.contract import API_KEY_ENV, BASE_URL_ENV, DEFAULT_MODEL
from langchain_afarensis_vision.server import _ocr
from langchain_afarensis_vision.server._access import LOGGER
from langchain_afarensis_vision.server._runner import LocalAfarensisServer
from langchain_afarensis_vision.server.app import create_app
from langchain_afarensis_vision.server.settings import is_loopback

_WARM_UP_KEY: Final = "sk-local-warm-up"
_M_MMAP_THRESHOLD: Final = -3
"""glibc's ``mallopt`` parameter: blocks this large or larger are mapped (unmapped when freed)."""


SWITCH_INTERVAL: Final = 0.001
"""Seconds a thread holds the interpreter's lock while another waits (Python's default: 0.005):
worker threads at work hand it to the event loop sooner, so ``/health`` answers meanwhile."""


def give_large_blocks_back() -> bool:
    """Have glibc map blocks of 1 MiB or more and unmap them when freed (False elsewhere)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # another C library
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 1024 * 1024))


def exposure_warning(host: str, allow_private_urls: bool) -> str | None:
    """What to warn about when serving on ``host`` (None on loopback)."""
    if is_loopback(host):
        return None
    reach = f"Warning: listening on {host}, beyond loopback: anyone who can reach this port"
    if allow_private_urls:
        return (
            f"{reach} and holds the key can make this server fetch any URL it can reach, "
            "internal and loopback ones included (--allow-private-urls)."
        )
    return (
        f"{reach} and holds the key can use this server. Image URLs are fetched only from "
        "public addresses (--allow-private-urls lifts that)."
    )


def warm_up() -> None:
    """Do now what a first request would do once while others wait.

    One small request is answered by a throwaway app in this process (nothing is counted or
    logged), and the OCR models are loaded: some of that work runs in long steps that hold the
    interpreter's lock (over 400 ms to load the tokenizer, 170 ms for a module import).
    """
    app = create_app(api_key=_WARM_UP_KEY, ocr=False)
    image = io.BytesIO()
    Image.new("RGB", (64, 32), "white").save(image, "PNG")
    url = "data:image/png;base64," + base64.b64encode(image.getvalue()).decode()
    content = [
        {"type": "text", "text": "What is in it?"},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    body = {
        "model": DEFAULT_MODEL,
        "max_tokens": 5,
        "messages": [{"role": "user", "content": content}],
    }

    async def ask() -> None:
        transport = httpx2.ASGITransport(app)
        async with httpx2.AsyncClient(
            transport=transport, base_url="http://warm-up.invalid"
        ) as client:
            headers = {"authorization": f"Bearer {_WARM_UP_KEY}"}
            answer = await client.post("/v1/chat/completions", json=body, headers=headers)
            answer.raise_for_status()

    quiet = {logger: logger.disabled for logger in (LOGGER, logging.getLogger("httpx2"))}
    for logger in quiet:
        logger.disabled = True
    try:
        asyncio.run(ask())
    finally:
        for logger, disabled in quiet.items():
            logger.disabled = disabled
    if _ocr.available():
        _ocr.warm()


def serve_main(
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
    *,
    allow_private_urls: bool = False,
    log_level: str = "warning",
    stop: threading.Event | None = None,
) -> int:
    """Serve until interrupted (or until ``stop`` is set); print how to point clients at it.

    Bound beyond loopback, it prints a warning, and fetches only public image URLs unless
    ``allow_private_urls``.

    Args:
        host: Interface to listen on.
        port: Port to listen on (0 picks a free one).
        api_key: The key to accept; a random one is generated and printed when None.
        rpm: Requests per minute allowed (None: no limit).
        tpm: Tokens per minute allowed (None: no limit).
        allow_private_urls: Fetch image URLs on any address, even bound beyond loopback.
        log_level: ``debug`` also turns on uvicorn's own debug log; each request is logged at
            ``info`` on the ``langchain_afarensis_vision.server`` logger (configure logging to
            see it: ``afarensis-vision serve`` does).
        stop: Set it to stop the server (for tests); Ctrl+C works too.

    Returns:
        The process exit code: 0.
    """
    give_large_blocks_back()
    sys.setswitchinterval(SWITCH_INTERVAL)
    warm_up()
    server = LocalAfarensisServer(
        host=host,
        port=port,
        api_key=api_key,
        requests_per_minute=rpm,
        tokens_per_minute=tpm,
        allow_private_urls=allow_private_urls,
        log_level="debug" if log_level.lower() == "debug" else "warning",
    )
    server.start()
    if (warning := exposure_warning(host, allow_private_urls)) is not None:
        print(warning, file=sys.stderr, flush=True)
    limits = ", ".join(
        f"{value} {name} per minute"
        for name, value in (("requests", rpm), ("tokens", tpm))
        if value
    )
    print(f"Local Afarensis server on {server.base_url} (offline engine; {limits or 'no limits'})")
    print(f"API key: {server.api_key}")
    print("Point a client at it with:")
    print(f"export {BASE_URL_ENV}={server.base_url}")
    print(f"export {API_KEY_ENV}={server.api_key}")
    print("Press Ctrl+C to stop.", flush=True)
    event = stop or threading.Event()
    try:
        while not event.wait(0.5) and server.running:
            pass
    except KeyboardInterrupt:
        print("\nStopping.")
    finally:
        server.stop()
    return 0
