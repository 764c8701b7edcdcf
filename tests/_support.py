"""Paths and helpers shared by the test suites."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Real images from Pillow's test collection, copied into the repository (HPND licence beside them).
TEST_DATA = ROOT / "tests" / "data"
TEST_IMAGES = TEST_DATA / "images"
# The wire schema: the package's own copy, the one the local server validates against.
OPENAPI_SPEC = ROOT / "langchain_afarensis_vision" / "server" / "openapi-chat-completions.json"


def raised_beside_fifo(
    fifo: Path, call: Callable[[], object], seconds: float = 5.0
) -> BaseException | None:
    """What ``call`` raised (None: nothing), run in a thread; fails if it blocks on ``fifo``.

    Opening a FIFO for reading waits for a writer: if ``call`` is still running after
    ``seconds``, a writer opens and closes the FIFO (so the thread ends) and the test fails.
    """
    raised: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # handed back to the test
            raised.append(exc)
        else:
            raised.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        with open(fifo, "wb"):
            pass
        thread.join(seconds)
        raise AssertionError(f"reading {fifo.name} blocked for {seconds:g} s")
    return raised[0]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True  # a handler still waiting (a slow answer) does not hold up the end

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that stops reading (a size cap, a deadline) is what tests expect


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` served on a free 127.0.0.1 port, in a thread; yields the base URL."""
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
