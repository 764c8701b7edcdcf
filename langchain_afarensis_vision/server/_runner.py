"""``LocalAfarensisServer``: the app served by uvicorn in a background thread, on a free port.

The listening socket is bound in the caller's thread (so ``port=0`` gets a free port that is
known before anything starts, and a busy port fails at once), then uvicorn serves it from a
daemon thread with its own event loop. :meth:`~LocalAfarensisServer.stop` wakes the server's
loop at once (uvicorn itself polls every 0.1 s), lets running answers finish for up to
``graceful_seconds``, then joins the thread. ``start_seconds`` and ``stop_seconds`` record how
long each took. A request's headers must arrive within ``read_timeout`` seconds
(:mod:`._protocol`), its body within as many once it is read (:mod:`._receive`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from typing import Any, Self, cast

import uvicorn

from langchain_afarensis_vision.server._protocol import with_header_deadline
from langchain_afarensis_vision.server.app import create_app
from langchain_afarensis_vision.server.faults import Faults
from langchain_afarensis_vision.server.limits import RateLimitState
from langchain_afarensis_vision.server.settings import (
    FETCH_TIMEOUT,
    ServerSettings,
    generate_api_key,
    url_policy_for,
)

START_TIMEOUT = 10.0


class _Server(uvicorn.Server):
    """uvicorn's server with a main loop that can be woken from another thread."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864_000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    def request_exit(self) -> None:
        """Ask the server to stop, from any thread."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(wake.set)


class LocalAfarensisServer:
    """An Afarensis-compatible API on this machine, for demos, tests and cassette recording.

    Example:
        ```python
        with LocalAfarensisServer() as server:
            model = ChatAfarensis(base_url=server.base_url, api_key=server.api_key)
            model.invoke("Hello")
        ```

    Args:
        host: Interface to listen on (loopback by default).
        port: Port to listen on; 0 picks a free one.
        api_key: The key to accept; a random ``sk-local-...`` one when None.
        requests_per_minute: Requests allowed in any 60 s window (None: no limit).
        tokens_per_minute: Tokens allowed in any 60 s window (None: no limit).
        faults: Faults to inject (none by default).
        seed: Seed of the fault decisions.
        graceful_seconds: How long :meth:`stop` lets running answers finish.
        log_level: uvicorn's log level.
        allow_private_urls: Bound beyond loopback, the server fetches image URLs as the
            ``describe_image`` tool does: public addresses only, each redirect checked (see
            ``ServerSettings.url_policy``). True lets it fetch any address, internal ones
            included. On loopback it fetches any URL.
        **options: Other :class:`ServerSettings` fields (``models``, ``ocr``, ...).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        faults: Faults | None = None,
        seed: int = 0,
        *,
        graceful_seconds: float = 2.0,
        log_level: str = "warning",
        allow_private_urls: bool = False,
        **options: Any,
    ) -> None:
        if "url_policy" not in options:
            timeout = options.get("fetch_timeout", FETCH_TIMEOUT)
            options["url_policy"] = url_policy_for(host, allow_private_urls, timeout)
        self.settings = ServerSettings(
            api_key=api_key or generate_api_key(),
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            faults=faults or Faults(),
            seed=seed,
            **options,
        )
        self.app = create_app(self.settings)
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._graceful = graceful_seconds
        self._log_level = log_level
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self.start_seconds: float | None = None
        self.stop_seconds: float | None = None

    @property
    def api_key(self) -> str:
        """The key the server accepts."""
        return self.settings.api_key

    @property
    def port(self) -> int:
        """The port it listens on (known once started)."""
        if self._port is None:
            raise RuntimeError("the server is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://<host>:<port>/v1``, for ``ChatAfarensis(base_url=...)`` or an SDK."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def running(self) -> bool:
        """Whether the server thread is serving."""
        return self._thread is not None and self._thread.is_alive()

    def rate_limits(self) -> RateLimitState:
        """The limits as the server counts them now: what its ``x-ratelimit-*`` headers say.

        ``limit_tokens - remaining_tokens`` is the tokens counted in the last 60 seconds (each
        admitted request's prompt tokens plus its ``max_tokens``), for watching a run.
        """
        return cast(RateLimitState, self.app.state.afarensis.limiter.state())

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not started"
        return f"LocalAfarensisServer({where})"

    def start(self) -> Self:
        """Bind, start serving in a background thread, and return once it accepts requests."""
        if self.running:
            return self
        began = time.perf_counter()
        sock = _bind(self.host, self._requested_port)
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            ws="none",
            log_config=None,
            log_level=self._log_level,
            access_log=False,
            server_header=False,
            http=with_header_deadline(self.settings.read_timeout),
            timeout_graceful_shutdown=max(1, round(self._graceful)),
        )
        server = self._server = _Server(config)
        self._failure = None
        thread = self._thread = threading.Thread(
            target=self._serve,
            args=(server, sock),
            name=f"afarensis-local-{self._port}",
            daemon=True,
        )
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                msg = f"the local server did not start: {self._failure!r}"
                raise RuntimeError(msg)
            time.sleep(0.002)
        self.start_seconds = time.perf_counter() - began
        return self

    def _serve(self, server: _Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported by start(): a thread cannot raise
            self._failure = exc

    def stop(self) -> None:
        """Stop serving and join the thread (idempotent)."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        began = time.perf_counter()
        server.request_exit()
        thread.join(self._graceful + 3.0)
        if thread.is_alive():
            server.force_exit = True
            thread.join(5.0)
        self._server = self._thread = None
        self.stop_seconds = time.perf_counter() - began

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
