"""The local server's settings, shared by :func:`create_app` and :class:`LocalAfarensisServer`."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from typing import Final

import httpx2

from langchain_afarensis_vision._api.contract import DEFAULT_MODEL
from langchain_afarensis_vision._sources.urls import UrlPolicy, parse_ip
from langchain_afarensis_vision.server.faults import Faults

DEFAULT_MODELS: Final = (DEFAULT_MODEL, "gpt-4-1106-vision-preview")
"""``gpt-4-vision-preview`` and the dated snapshot name it stood for: a second accepted name
for tests that override the model per call (LangChain's ``model_override_value``)."""
DEFAULT_MAX_TOKENS: Final = 16
"""The completion budget when a request sets no ``max_tokens``: the preview model's own very
short default, so that a client that forgets ``max_tokens`` sees truncated answers here too."""
CREATED: Final = 1_699_228_800
"""``created`` of every answer by default (2023-11-06, when gpt-4-vision-preview appeared), so
that answers, and cassettes recorded from them, are byte for byte reproducible."""
FETCH_TIMEOUT: Final = 10.0
"""Seconds one image download may take, redirects included."""
MAX_BODY_BYTES: Final = 128 * 1024 * 1024
READ_TIMEOUT: Final = 30.0
"""Seconds a client has to send a request's headers (from its first byte, or from the connection
being opened), and again to send its body once the server reads it; then the connection is
closed (after a 400 when the headers were in)."""

# -- per-request caps (each a 400 ``invalid_value`` naming the cap and the field) ---------------
MAX_JSON_VALUES: Final = 200_000
"""Most JSON values in a body (objects, arrays and their elements: each ``{``, ``[`` and ``,``
outside strings), checked before it is parsed."""
MAX_JSON_DEPTH: Final = 64
"""Deepest nesting of objects and arrays in a body, checked before it is parsed."""
MAX_JSON_KEYS: Final = 1_000
"""Most keys in one JSON object of a body, checked as it is parsed (before the schema)."""
MAX_CONTENT_PARTS: Final = 10_000
"""Most content parts in a request, all messages together (a string content counts as one)."""
MAX_IMAGES: Final = 50
"""Most image parts in a request."""
MAX_REQUEST_IMAGE_BYTES: Final = MAX_BODY_BYTES
"""Most bytes of images downloaded for one request (inline ones are bounded by the body cap);
more is ``image_too_large``."""

# -- what all requests share -----------------------------------------------------------------
BODY_MEMORY: Final = 512 * 1024 * 1024
"""Request bodies in flight at once, all requests together: each request reserves
:data:`BODY_COPIES` times its body's size (its declared length; a chunked body as it grows)
from its first byte read to its answer."""
BODY_COPIES: Final = 3
"""What a body costs while it is read, at most: the bytes, and the strings parsed from them
(each long string decoded a window at a time, then joined), then the image bytes in them."""
BODY_WAIT: Final = 60.0
"""Seconds a request waits for body memory before it is answered 503 with ``Retry-After``."""
WORKER_THREADS: Final = min(4, max(2, os.cpu_count() or 2))
"""CPU work (JSON parsing, schema validation, image checks, the engine) runs in at most this
many worker threads at once, never on the event loop: one per core (2 to 4). More threads than
cores only wait for the interpreter's lock, and the event loop waits longer for its turn
(16 concurrent 19.8 MB requests on 2 cores: ``/health`` took at most 225-324 ms with 4 threads,
119-128 ms with 2, and the 16 answers came 10% sooner)."""
IMAGE_MEMORY: Final = 256 * 1024 * 1024
"""Image bytes in flight at once, all requests together: what each image's decode really
allocates (estimated from its header) is reserved around it, waiting for room; an image that
alone would take more is answered from its header, its pixels not examined."""
HEAVY_VALUES: Final = 5_000
"""A body with more commas than this (about as many JSON values) is parsed, validated and
answered in a lane of one worker thread of its own: such bodies wait for each other, and the
other requests do not wait for them."""
MAX_DOWNLOADS: Final = 4
"""Image URLs downloaded at once, all requests together."""
DOWNLOAD_MEMORY: Final = 64 * 1024 * 1024
"""Downloaded bytes in flight at once, all requests together: each download reserves the most
it may read (20 MB, or its declared length) until it ends."""


def is_loopback(host: str) -> bool:
    """Whether a server bound to ``host`` is reachable from this machine only."""
    ip = parse_ip(host)
    return host.lower() == "localhost" or (ip is not None and ip.is_loopback)


def url_policy_for(host: str, allow_private_urls: bool, timeout: float) -> UrlPolicy | None:
    """The image URL policy of a server bound to ``host``.

    None on loopback (the server serves its own machine) or when ``allow_private_urls``; else
    the ``describe_image`` tool's: public addresses only, each redirect checked.
    """
    if is_loopback(host) or allow_private_urls:
        return None
    return UrlPolicy(download=True, timeout=timeout)


def generate_api_key() -> str:
    """A fresh random key, ``sk-local-...``."""
    return f"sk-local-{secrets.token_urlsafe(24)}"


@dataclass(frozen=True)
class ServerSettings:
    """Everything that shapes the server's behaviour.

    Attributes:
        api_key: The only key accepted (``Authorization: Bearer <key>``).
        models: The model names served; any other is a 404 ``model_not_found``.
        requests_per_minute: Requests allowed in any 60 s window (None: no limit).
        tokens_per_minute: Tokens (prompt + ``max_tokens``) allowed in any 60 s window.
        faults: Injected faults (none by default).
        seed: Seed of the fault decisions.
        ocr: Read text in images: None when the ``ocr`` extra is installed, or True/False.
        default_max_tokens: Completion budget of requests that set no ``max_tokens``.
        created: ``created`` of every answer; None for the current time.
        fetch_timeout: Seconds allowed to download one image URL.
        max_body_bytes: Largest request body read.
        read_timeout: Seconds a client has to send a request's headers, and again its body.
        body_memory: Bytes of request bodies (times :data:`BODY_COPIES`) held at once.
        body_wait: Seconds a request waits for body memory before a 503 ``Retry-After``.
        image_transport: Where image URLs are fetched from (default: the network). Tests
            and offline recordings pass an ``httpx2.MockTransport`` that serves known URLs
            from local bytes.
        url_policy: None (the default, for a server on loopback) fetches any image URL; a
            ``UrlPolicy`` fetches them as the ``describe_image`` tool does: public addresses
            only (unless it allows more), each redirect checked, errors that tell nothing of
            what was found. ``LocalAfarensisServer`` sets one when bound beyond loopback.
    """

    api_key: str = field(default_factory=generate_api_key)
    models: tuple[str, ...] = DEFAULT_MODELS
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    faults: Faults = field(default_factory=Faults)
    seed: int = 0
    ocr: bool | None = None
    default_max_tokens: int = DEFAULT_MAX_TOKENS
    created: int | None = CREATED
    fetch_timeout: float = FETCH_TIMEOUT
    max_body_bytes: int = MAX_BODY_BYTES
    read_timeout: float = READ_TIMEOUT
    body_memory: int = BODY_MEMORY
    body_wait: float = BODY_WAIT
    image_transport: httpx2.AsyncBaseTransport | None = None
    url_policy: UrlPolicy | None = None

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ValueError("api_key must not be empty")
        if not self.models:
            raise ValueError("models must name at least one model")
        if self.default_max_tokens < 1:
            raise ValueError("default_max_tokens must be at least 1")
