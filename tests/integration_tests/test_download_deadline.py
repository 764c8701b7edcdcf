"""``_sources.urls.download`` keeps one deadline for a whole download, against a real slow server.

A download's ``timeout`` bounds everything it does: every hop of a redirect chain gets only
what is left of it (an httpx2 timeout of the full ``timeout`` per hop let a chain of slow hops
run for hops x timeout), and so does the body once the headers are in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from langchain_afarensis_vision._sources import urls as _safety
from langchain_afarensis_vision._sources.urls import ImageRefused, UrlPolicy
from tests._support import serving

pytestmark = pytest.mark.enable_socket

TIMEOUT = 1.0
SLOW = 0.9  # each answer comes this long after its request: within one timeout, not two
SLACK = 0.3  # scheduling, connecting


class _SlowHandler(BaseHTTPRequestHandler):
    """``/hop/N``: a redirect to ``/hop/N+1`` after SLOW s; ``/stall``: headers after SLOW s,
    then a body that never comes."""

    release: threading.Event

    def do_GET(self) -> None:
        self.release.wait(SLOW)
        if self.path.startswith("/hop/"):
            self.send_response(302)
            self.send_header("location", f"/hop/{int(self.path.rsplit('/', 1)[1]) + 1}")
            self.send_header("content-length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("content-type", "image/png")
        self.send_header("content-length", "1000")
        self.end_headers()
        self.wfile.flush()
        self.release.wait(30)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def slow_host() -> Iterator[str]:
    release = threading.Event()
    with serving(type("Handler", (_SlowHandler,), {"release": release})) as base_url:
        yield base_url
        release.set()


def _timed_refusal(url: str) -> tuple[float, str]:
    policy = UrlPolicy(download=True, allow_private=["127.0.0.1"], timeout=TIMEOUT)
    began = time.monotonic()
    with pytest.raises(ImageRefused) as refused:
        _safety.download(url, policy)
    return time.monotonic() - began, str(refused.value)


def test_a_chain_of_slow_redirects_ends_at_the_deadline(slow_host: str) -> None:
    elapsed, reason = _timed_refusal(f"{slow_host}/hop/0")
    assert "timed out" in reason or "took too long" in reason, reason
    assert TIMEOUT - 0.05 < elapsed < TIMEOUT + SLACK, elapsed  # before: 2 x SLOW (1.8 s)


def test_a_body_stalled_after_slow_headers_ends_at_the_deadline(slow_host: str) -> None:
    elapsed, reason = _timed_refusal(f"{slow_host}/stall")
    assert "timed out" in reason, reason
    assert TIMEOUT - 0.05 < elapsed < TIMEOUT + SLACK, elapsed  # before: SLOW + TIMEOUT
