"""Fixtures and helpers for tests that cross HTTP: the local Afarensis server and an image host.

Tests that use a real socket (all of them here) must enable sockets for themselves, since the
suite runs with ``--disable-socket``: a module-level ``pytestmark = pytest.mark.enable_socket``.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx2
import pytest
from PIL import Image

from langchain_afarensis_vision import ChatAfarensis
from langchain_afarensis_vision.server import LocalAfarensisServer
from tests._schema import assert_valid
from tests._support import serving

MODEL = "gpt-4-vision-preview"


# -- images ------------------------------------------------------------------------------------


def image_bytes(
    size: tuple[int, int] = (64, 64),
    color: tuple[int, ...] | str = (255, 0, 0),
    fmt: str = "PNG",
    mode: str = "RGB",
) -> bytes:
    """An encoded solid image."""
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, fmt)
    return buffer.getvalue()


def numbered_png(n: int, size: tuple[int, int] = (40, 30)) -> bytes:
    """A small solid PNG whose colour (so whose bytes) differs for each ``n`` below 256."""
    return image_bytes(size, (n % 256, (n * 7) % 256, (n * 13) % 256))


def jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL file (a corpus run's ``out``)."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def image_part(url: str, detail: str | None = None) -> dict[str, Any]:
    image_url: dict[str, Any] = {"url": url}
    if detail is not None:
        image_url["detail"] = detail
    return {"type": "image_url", "image_url": image_url}


def user(*parts: dict[str, Any] | str) -> dict[str, Any]:
    """A user message; strings become text parts."""
    content = [{"type": "text", "text": p} if isinstance(p, str) else p for p in parts]
    return {"role": "user", "content": content}


def body(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A request body (``max_tokens`` 300 unless given)."""
    return {"model": MODEL, "messages": list(messages), "max_tokens": 300, **extra}


# -- checking answers --------------------------------------------------------------------------


def ok_json(response: httpx2.Response) -> dict[str, Any]:
    """A 200 answer's body, checked against ``CreateChatCompletionResponse``."""
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    assert_valid("CreateChatCompletionResponse", data)
    return data


def assert_error(
    response: httpx2.Response, status: int, code: str | None, param: str | None = "?"
) -> dict[str, Any]:
    """An error answer with this status and code (and param, unless "?"), schema-checked."""
    assert response.status_code == status, response.text
    data: dict[str, Any] = response.json()
    assert_valid("ErrorResponse", data)
    assert data["error"]["code"] == code, data
    if param != "?":
        assert data["error"]["param"] == param, data
    return data


def sse_events(response: httpx2.Response) -> tuple[list[dict[str, Any]], bool]:
    """The parsed ``data:`` events of an SSE answer (each schema-checked), and whether [DONE]."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events, done = [], False
    for block in response.text.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        payload = block[len("data: ") :]
        if payload == "[DONE]":
            done = True
            continue
        assert not done, "an event after [DONE]"
        event = json.loads(payload)
        assert_valid("CreateChatCompletionStreamResponse", event)
        events.append(event)
    return events, done


# -- servers -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def afarensis_server() -> Iterator[LocalAfarensisServer]:
    """One default local server for the session (no limits, no faults, no OCR: answers do not
    depend on whether the OCR extra is installed)."""
    with LocalAfarensisServer(api_key="sk-local-test-key-0123456789", ocr=False) as server:
        yield server


@pytest.fixture
def make_chat(
    afarensis_server: LocalAfarensisServer,
) -> Iterator[Callable[..., ChatAfarensis]]:
    """Build ChatAfarensis models aimed at a local server (the session one unless given), with
    no retries unless asked; their sync HTTP clients are closed after the test."""
    clients: list[httpx2.Client] = []

    def make(server: LocalAfarensisServer | None = None, **kwargs: Any) -> ChatAfarensis:
        server = server or afarensis_server
        http = httpx2.Client(timeout=30)
        clients.append(http)
        params: dict[str, Any] = {
            "base_url": server.base_url,
            "api_key": server.api_key,
            "max_retries": 0,
            "http_client": http,
        }
        return ChatAfarensis(**{**params, **kwargs})

    yield make
    for http in clients:
        http.close()


@pytest.fixture
def client(afarensis_server: LocalAfarensisServer) -> Iterator[httpx2.Client]:
    """An httpx2 client authenticated to the session server."""
    headers = {"authorization": f"Bearer {afarensis_server.api_key}"}
    with httpx2.Client(base_url=afarensis_server.base_url, headers=headers, timeout=30) as c:
        yield c


@pytest.fixture
def start_server() -> Iterator[Callable[..., LocalAfarensisServer]]:
    """Start servers with other settings; they are all stopped after the test."""
    started: list[LocalAfarensisServer] = []

    def start(**kwargs: Any) -> LocalAfarensisServer:
        server = LocalAfarensisServer(**kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def authed(server: LocalAfarensisServer) -> httpx2.Client:
    return httpx2.Client(
        base_url=server.base_url,
        headers={"authorization": f"Bearer {server.api_key}"},
        timeout=30,
    )


# -- a tiny image host -------------------------------------------------------------------------


@dataclass
class ImageHost:
    """Serves ``routes`` (path -> status, body, content type) on 127.0.0.1."""

    routes: dict[str, tuple[int, bytes, str]] = field(default_factory=dict)
    big_bytes: int = 21 * 1024 * 1024
    base_url: str = ""

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


class _Handler(BaseHTTPRequestHandler):
    host: ImageHost

    def do_GET(self) -> None:
        if self.path == "/big.png":  # a body larger than 20 MB, sent in chunks
            self.send_response(200)
            self.send_header("content-type", "image/png")
            self.send_header("content-length", str(self.host.big_bytes))
            self.end_headers()
            chunk = b"\x89PNG" + bytes(64 * 1024 - 4)
            for _ in range(self.host.big_bytes // len(chunk)):
                self.wfile.write(chunk)
            return
        status, payload, kind = self.host.routes.get(self.path, (404, b"not found", "text/plain"))
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="session")
def image_host() -> Iterator[ImageHost]:
    host = ImageHost()
    with serving(type("Handler", (_Handler,), {"host": host})) as base_url:
        host.base_url = base_url
        yield host
