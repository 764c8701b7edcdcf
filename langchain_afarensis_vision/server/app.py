"""The routes: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /v1/models/{id}``.

A chat completion goes one straight way, each step raising an :class:`~._errors.APIError` (or a
:class:`~.limits.RateLimited`) that becomes the API's error answer::

    auth (401) -> requests/min (429) -> body memory (503), size and deadline (400) ->
    JSON bounds, caps, schema (400) -> model (404) and
    request checks (400) -> inline images' headers (400) -> context window (400) -> downloads
    and their headers (400) -> context window (400) -> images decoded (400) -> tokens/min (429)
    -> engine -> JSON answer, or SSE events

A request holds its body's share of the body memory (:mod:`._receive`) until it is answered;
an answer given before a chunked or oversized body was read to its end closes the connection.
The event loop only reads bodies and writes answers: every step that costs CPU (JSON, schema,
images, the engine) runs in the worker pool of :mod:`._work`, so ``/health`` and other requests
are answered while one is at work.

Every chat-completion answer past authentication carries the six ``x-ratelimit-*`` headers, and
every answer an ``x-request-id`` (:mod:`._access`, which also logs each request).
``GET /health`` answers ``{"status": "ok"}`` without a key. Unknown paths and methods, and
unexpected failures, are answered with ``ErrorResponse`` bodies too.
"""

from __future__ import annotations

import contextlib
import hmac
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from langchain_afarensis_vision._api.contract import CONTEXT_WINDOW
from langchain_afarensis_vision.server import _bodies
from langchain_afarensis_vision.server._access import RequestLog, note
from langchain_afarensis_vision.server._downloads import Downloader
from langchain_afarensis_vision.server._errors import (
    APIError,
    invalid_api_key,
    invalid_value,
    model_not_found,
    rate_limited,
    server_error,
)
from langchain_afarensis_vision.server._reading import read_images
from langchain_afarensis_vision.server._receive import CLOSE, must_close, receive_body
from langchain_afarensis_vision.server._request import (
    ChatRequest,
    PromptTokens,
    prompt_tokens,
    read_body,
)
from langchain_afarensis_vision.server._work import Work
from langchain_afarensis_vision.server.engine import Answer, Engine
from langchain_afarensis_vision.server.faults import FaultMiddleware
from langchain_afarensis_vision.server.limits import RateLimited, RateLimiter, RateLimitState
from langchain_afarensis_vision.server.settings import HEAVY_VALUES, ServerSettings

OWNED_BY = "afarensis-local"


@dataclass
class _State:
    settings: ServerSettings
    limiter: RateLimiter
    engine: Engine
    work: Work
    downloader: Downloader


def create_app(settings: ServerSettings | None = None, /, **options: Any) -> Starlette:
    """The ASGI app; ``options`` are :class:`ServerSettings` fields (used when no ``settings``).

    The key the app accepts is ``app.state.settings.api_key`` (generated unless given).

    Example:
        ```python
        import httpx2
        app = create_app(api_key="sk-local-test")
        client = httpx2.Client(transport=httpx2.ASGITransport(app), base_url="http://local/v1")
        ```
    """
    settings = settings if settings is not None else ServerSettings(**options)
    limiter = RateLimiter(
        settings.requests_per_minute, settings.tokens_per_minute, model=settings.models[0]
    )
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", _chat_completions, methods=["POST"]),
            Route("/v1/models", _list_models, methods=["GET"]),
            Route("/v1/models/{model}", _get_model, methods=["GET"]),
            Route("/health", _health, methods=["GET"]),
        ],
        middleware=[
            Middleware(RequestLog, unexpected=_unexpected),
            Middleware(
                FaultMiddleware, faults=settings.faults, seed=settings.seed, limiter=limiter
            ),
        ],
        exception_handlers={HTTPException: _http_exception, Exception: _unexpected},
    )
    app.state.settings = settings
    work = Work(body_memory=settings.body_memory)
    downloader = Downloader(
        work, settings.fetch_timeout, settings.image_transport, settings.url_policy
    )
    app.state.afarensis = _State(
        settings, limiter, Engine(settings.ocr, work.images), work, downloader
    )
    return app


# -- routes ------------------------------------------------------------------------------------


async def _chat_completions(request: Request) -> Response:
    async with contextlib.AsyncExitStack() as held:  # the body's memory, until it is answered
        response = await _answer(request, request.app.state.afarensis, held)
    if must_close(request, request.app.state.settings):  # the rest of the body is never read
        response.headers.update(CLOSE)
    return response


async def _answer(request: Request, state: _State, held: contextlib.AsyncExitStack) -> Response:
    try:
        _authenticate(request, state.settings.api_key)
    except APIError as refused:
        return _error(refused)
    try:
        state.limiter.admit_request()
        chat, prompt, answer, limits = await _complete(request, state, held)
    except RateLimited as limited:
        return _error(rate_limited(limited.message, limited.headers()))
    except APIError as error:
        return _error(error, state.limiter.state().headers())
    meta = _bodies.Meta.of(chat, state.settings.created or int(time.time()))
    usage = _bodies.usage(prompt, answer, chat.n)
    note(request, tokens=usage["total_tokens"])
    if chat.stream:
        events = _bodies.chunks(meta, answer, chat.n, usage if chat.include_usage else None)
        return StreamingResponse(
            _sse(list(events)),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", **limits.headers()},
        )
    return JSONResponse(_bodies.completion(meta, answer, chat.n, usage), headers=limits.headers())


async def _complete(
    request: Request, state: _State, held: contextlib.AsyncExitStack
) -> tuple[ChatRequest, PromptTokens, Answer, RateLimitState]:
    settings, work = state.settings, state.work
    raw, commas = await receive_body(request, settings, work.bodies, held)
    heavy = commas > HEAVY_VALUES  # waits for other heavy ones, not the reverse
    chat = await work.run(read_body, raw, settings.models, settings.default_max_tokens, heavy=heavy)
    note(request, model=chat.model, images=len(chat.images))

    def admit(image_tokens: int, exact: bool) -> None:
        _check_context(chat, image_tokens, exact)

    images = await read_images(chat.images, work, state.downloader, admit)
    prompt = prompt_tokens(chat, images)
    limits = state.limiter.admit_tokens(prompt.total + chat.max_tokens * chat.n)
    answer = await work.run(state.engine.answer, chat, images, heavy=heavy)
    return chat, prompt, answer, limits


def _check_context(chat: ChatRequest, image_tokens: int, exact: bool) -> None:
    """Refuse a request over the context window (``exact``: else a lower bound of it)."""
    prompt = chat.text_tokens + image_tokens
    wanted = prompt + chat.max_tokens
    if wanted > CONTEXT_WINDOW:
        least = "" if exact else "at least "
        message = (
            f"This model's maximum context length is {CONTEXT_WINDOW} tokens. However, you "
            f"requested {least}{wanted} tokens ({least}{prompt} in the messages, "
            f"{chat.max_tokens} in the completion). Please reduce the length of the messages "
            "or completion."
        )
        raise invalid_value(message, "messages")


async def _list_models(request: Request) -> Response:
    settings: ServerSettings = request.app.state.settings
    try:
        _authenticate(request, settings.api_key)
    except APIError as error:
        return _error(error)
    data = [_model(name) for name in settings.models]
    return JSONResponse({"object": "list", "data": data})


async def _get_model(request: Request) -> Response:
    settings: ServerSettings = request.app.state.settings
    name = request.path_params["model"]
    try:
        _authenticate(request, settings.api_key)
        if name not in settings.models:
            raise model_not_found(name)
    except APIError as error:
        return _error(error)
    return JSONResponse(_model(name))


async def _health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


# -- helpers -----------------------------------------------------------------------------------


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1_698_796_800, "owned_by": OWNED_BY}


def _authenticate(request: Request, api_key: str) -> None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise invalid_api_key(
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
    if not hmac.compare_digest(token.encode(), api_key.encode()):
        shown = (
            f"{token[:3]}{'*' * max(0, len(token) - 7)}{token[-4:]}" if len(token) > 8 else "***"
        )
        raise invalid_api_key(f"Incorrect API key provided: {shown}.")


async def _sse(chunks: list[dict[str, Any]]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield _bodies.sse(chunk)
    yield _bodies.DONE


def _error(error: APIError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        error.body(), status_code=error.status, headers={**(headers or {}), **error.headers}
    )


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"Invalid URL ({request.method} {request.url.path})"
    else:
        message = f"{exc.detail} ({request.method} {request.url.path})"
    return _error(APIError(exc.status_code, message))


async def _unexpected(request: Request, exc: Exception) -> Response:
    return _error(server_error(500, f"The local server failed: {type(exc).__name__}: {exc}"))
