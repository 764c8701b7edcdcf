"""Requests- and tokens-per-minute limits: 429 with Retry-After and the x-ratelimit headers."""

from __future__ import annotations

from typing import Any

import pytest

from langchain_afarensis_vision.server.limits import (
    UNLIMITED,
    RateLimited,
    RateLimiter,
    duration,
)
from tests.integration_tests.conftest import assert_error, authed, body, ok_json

pytestmark = pytest.mark.enable_socket

HEADERS = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
)
HELLO = body({"role": "user", "content": "Hello"}, max_tokens=10)
HELLO_TOKENS = 8 + 10  # prompt (3 + 3 + 2) + max_tokens


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_requests_per_minute(start_server: Any) -> None:
    server = start_server(requests_per_minute=2)
    with authed(server) as client:
        first = client.post("/chat/completions", json=HELLO)
        ok_json(first)
        assert first.headers["x-ratelimit-limit-requests"] == "2"
        assert first.headers["x-ratelimit-remaining-requests"] == "1"
        assert first.headers["x-ratelimit-limit-tokens"] == str(UNLIMITED)
        ok_json(client.post("/chat/completions", json=HELLO))
        refused = client.post("/chat/completions", json=HELLO)
    data = assert_error(refused, 429, "rate_limit_exceeded", None)
    assert data["error"]["type"] == "rate_limit_exceeded"
    assert "requests per min (RPM): Limit 2, Used 2" in data["error"]["message"]
    assert 59 <= int(refused.headers["retry-after"]) <= 60
    assert all(name in refused.headers for name in HEADERS)
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"


def test_tokens_per_minute(start_server: Any) -> None:
    server = start_server(tokens_per_minute=2 * HELLO_TOKENS + 5)
    with authed(server) as client:
        first = client.post("/chat/completions", json=HELLO)
        assert first.headers["x-ratelimit-remaining-tokens"] == str(HELLO_TOKENS + 5)
        ok_json(client.post("/chat/completions", json=HELLO))
        refused = client.post("/chat/completions", json=HELLO)
        too_big = client.post("/chat/completions", json={**HELLO, "max_tokens": 4000})
    data = assert_error(refused, 429, "rate_limit_exceeded")
    assert "tokens per min (TPM)" in data["error"]["message"]
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-remaining-tokens"] == "5"
    data = assert_error(too_big, 429, "rate_limit_exceeded")
    assert data["error"]["message"].startswith("Request too large")
    # What the server counts, as its owner sees it: the same numbers the headers carry.
    seen = server.rate_limits()
    assert (seen.limit_tokens, seen.remaining_tokens) == (2 * HELLO_TOKENS + 5, 5)
    assert seen.headers()["x-ratelimit-remaining-tokens"] == refused.headers[HEADERS[4]]


def test_headers_on_every_chat_answer(start_server: Any) -> None:
    server = start_server(requests_per_minute=100, tokens_per_minute=10_000)
    with authed(server) as client:
        ok = client.post("/chat/completions", json=HELLO)
        bad = client.post("/chat/completions", json={**HELLO, "model": "nope"})
        stream = client.post("/chat/completions", json={**HELLO, "stream": True})
    for response in (ok, bad, stream):
        assert all(name in response.headers for name in HEADERS), response.headers
    assert ok.headers["x-ratelimit-remaining-tokens"] == str(10_000 - HELLO_TOKENS)
    assert bad.headers["x-ratelimit-remaining-requests"] == "98"


def test_window_slides() -> None:
    clock = Clock()
    limiter = RateLimiter(requests_per_minute=2, tokens_per_minute=100, clock=clock)
    limiter.admit_request()
    clock.now += 30
    limiter.admit_request()
    with pytest.raises(RateLimited) as refused:
        limiter.admit_request()
    assert refused.value.retry_after == pytest.approx(30)
    assert refused.value.headers()["retry-after"] == "30"
    clock.now += 30.001
    state = limiter.admit_request()  # the first request left the window
    assert state.remaining_requests == 0
    assert state.reset_requests == pytest.approx(60)


def test_tokens_wait_for_enough_to_expire() -> None:
    clock = Clock()
    limiter = RateLimiter(tokens_per_minute=100, clock=clock)
    limiter.admit_tokens(40)
    clock.now += 10
    limiter.admit_tokens(40)
    clock.now += 10
    with pytest.raises(RateLimited) as refused:
        limiter.admit_tokens(50)  # 80 used: needs the first 40 to expire, in 40 s
    assert refused.value.retry_after == pytest.approx(40)
    with pytest.raises(RateLimited) as refused:
        limiter.admit_tokens(90)  # needs both to expire, in 50 s
    assert refused.value.retry_after == pytest.approx(50)
    clock.now += 40.001
    assert limiter.admit_tokens(50).remaining_tokens == 10


def test_unlimited_reports_the_sentinel() -> None:
    state = RateLimiter().state()
    assert state.headers() == {
        "x-ratelimit-limit-requests": str(UNLIMITED),
        "x-ratelimit-remaining-requests": str(UNLIMITED),
        "x-ratelimit-reset-requests": "0s",
        "x-ratelimit-limit-tokens": str(UNLIMITED),
        "x-ratelimit-remaining-tokens": str(UNLIMITED),
        "x-ratelimit-reset-tokens": "0s",
    }


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.25, "250ms"), (6.5, "6.5s"), (59.9994, "59.999s"), (65, "1m5s"), (360, "6m0s")],
)
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="requests_per_minute"):
        RateLimiter(requests_per_minute=0)
