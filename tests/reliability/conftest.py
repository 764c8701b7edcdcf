"""Shared by the reliability suites: local servers whose every request attempt is recorded.

:class:`Recorder` is an ASGI middleware added *outside* the server's fault injection (so it sees
every attempt, including those answered by an injected 429/5xx, dropped or cut). Per attempt it
notes when it arrived, a digest of the exact body, the marker the body carries (the content of
its last ``tool`` message: the offline engine echoes a tool result, so the answer names the
request it answers), the status sent back (None: the connection was dropped before any
answer), the body bytes that actually left the server, and whether the answer was complete.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from langchain_afarensis_vision.server import LocalAfarensisServer

MARKER_PREFIX = "marker-"


@dataclass
class Attempt:
    """One request as the server received it, and what it sent back."""

    started: float
    digest: str
    marker: str | None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    sent: bytearray = field(default_factory=bytearray)
    complete: bool = False

    def events(self) -> list[dict[str, Any]]:
        """The SSE ``data:`` events (JSON) that left the server, in order ([DONE] excluded)."""
        out = []
        for block in bytes(self.sent).decode("utf-8", "replace").split("\n\n"):
            if block.startswith("data: ") and block != "data: [DONE]":
                out.append(json.loads(block[len("data: ") :]))
        return out


def body_marker(raw: bytes) -> str | None:
    """The content of the last ``tool`` message of a request body, if it is a marker."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    tools = [m for m in body.get("messages", []) if m.get("role") == "tool"]
    content = tools[-1].get("content") if tools else None
    return content if isinstance(content, str) and content.startswith(MARKER_PREFIX) else None


def body_digest(raw: bytes) -> str:
    """What the local server derives its answer ids from (``chatcmpl-local-<digest>``)."""
    return hashlib.blake2b(raw, digest_size=12).hexdigest()


class _Replay:
    """Replays an already-read request body, then defers to the server's own ``receive``.

    Exposes the connection's ``transport`` as the original bound ``receive`` does, so the fault
    injection can still abort the very socket (drops and cut streams stay real).
    """

    def __init__(self, receive: Receive, messages: list[Message]) -> None:
        self.transport = getattr(getattr(receive, "__self__", None), "transport", None)
        self._receive = receive
        self._messages = messages

    async def receive(self) -> Message:
        if self._messages:
            return self._messages.pop(0)
        return await self._receive()


class Recorder:
    """ASGI middleware recording every chat-completion attempt (see the module docstring)."""

    def __init__(self, app: ASGIApp, attempts: list[Attempt], lock: threading.Lock) -> None:
        self.app = app
        self.attempts = attempts
        self.lock = lock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/chat/completions"):
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        messages: list[Message] = []
        raw = bytearray()
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            raw += message.get("body", b"")
            if not message.get("more_body", False):
                break
        attempt = Attempt(started, body_digest(bytes(raw)), body_marker(bytes(raw)))
        with self.lock:
            self.attempts.append(attempt)

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                attempt.status = int(message["status"])
                attempt.headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
            elif message["type"] == "http.response.body":
                attempt.sent += message.get("body", b"")
                attempt.complete = not message.get("more_body", False)
            await send(message)

        await self.app(scope, _Replay(receive, messages).receive, recording_send)


@dataclass
class Recorded:
    """A running local server and the attempts it has recorded so far."""

    server: LocalAfarensisServer
    attempts: list[Attempt]
    lock: threading.Lock

    def by_marker(self) -> dict[str | None, list[Attempt]]:
        """Attempts grouped by marker, each group in arrival order."""
        with self.lock:
            snapshot = sorted(self.attempts, key=lambda a: a.started)
        groups: dict[str | None, list[Attempt]] = {}
        for attempt in snapshot:
            groups.setdefault(attempt.marker, []).append(attempt)
        return groups


@pytest.fixture
def recorded_server() -> Iterator[Callable[..., Recorded]]:
    """Start local servers (any ``LocalAfarensisServer`` options) that record every attempt;
    they are all stopped after the test."""
    started: list[LocalAfarensisServer] = []

    def start(**options: Any) -> Recorded:
        options.setdefault("ocr", False)
        server = LocalAfarensisServer(**options)
        attempts: list[Attempt] = []
        lock = threading.Lock()
        server.app.add_middleware(Recorder, attempts=attempts, lock=lock)
        started.append(server.start())
        return Recorded(server, attempts, lock)

    yield start
    for server in started:
        server.stop()


def echo_conversation(marker: str, *extra: BaseMessage) -> list[BaseMessage]:
    """A conversation ending with a tool result ``marker``: the engine's answer quotes it."""
    call_id = f"call_{marker}"
    return [
        *extra,
        HumanMessage("Run the echo tool."),
        AIMessage("", tool_calls=[{"id": call_id, "name": "echo", "args": {}}]),
        ToolMessage(marker, tool_call_id=call_id),
    ]
