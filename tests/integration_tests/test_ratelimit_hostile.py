"""Hostile rate-limit headers over real HTTP: every call ends, with an answer or a typed error.

A server on 127.0.0.1 answers its first request with a 429 whose ``Retry-After`` is absurd (a
billion seconds, ``inf``, ``retry-after-ms`` of 10^12, an HTTP date) or teaches limits that
would stop every call (zero requests, zero or negative tokens). A model with a shared
:class:`AfarensisRateLimiter` makes four calls in a row: each ends, all four well within the
deadline, with an answer or an :class:`AfarensisError` (a ``RateLimitError`` carrying the
server's retry time, for a pause longer than ``max_retry_after``). ``caption`` goes on to the
last image instead of stopping after the first line.
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest
from langchain_core.messages import AIMessage

from langchain_afarensis_vision import AfarensisRateLimiter, ChatAfarensis
from langchain_afarensis_vision.errors import AfarensisError, RateLimitError
from tests._cli_support import run_cli
from tests._support import serving
from tests.integration_tests.conftest import numbered_png

pytestmark = [pytest.mark.enable_socket, pytest.mark.allow_hosts(["127.0.0.1"])]

DEADLINE = 90.0  # for the four calls in all; each ends in about a second
_ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 0,
    "model": "gpt-4-vision-preview",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "a picture"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 90, "completion_tokens": 2, "total_tokens": 92},
}
_SLOW_DOWN = {
    "error": {
        "message": "Rate limit reached.",
        "type": "rate_limit_error",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}


class _Hostile(BaseHTTPRequestHandler):
    """The first request gets ``first`` (a 429's headers, or None: a 200); every answer
    carries ``always``."""

    first: ClassVar[dict[str, str] | None] = None
    always: ClassVar[dict[str, str]] = {}
    seen: ClassVar[list[float]]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        self.seen.append(time.monotonic())
        first = self.first if len(self.seen) == 1 else None
        body = json.dumps(_ANSWER if first is None else _SLOW_DOWN).encode()
        self.send_response(200 if first is None else 429)
        for name, value in {**(first or {}), **self.always}.items():
            self.send_header(name, value)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


def _serving(first: dict[str, str] | None, always: dict[str, str]) -> AbstractContextManager[str]:
    handler = type("Handler", (_Hostile,), {"first": first, "always": always, "seen": []})
    return serving(handler)


HOSTILE = [
    pytest.param({"retry-after": "1e9"}, {}, id="retry-after-1e9"),
    pytest.param({"retry-after": "inf"}, {}, id="retry-after-inf"),
    pytest.param({"retry-after-ms": str(10**12)}, {}, id="retry-after-ms-1e12"),
    pytest.param({"retry-after": _http_date(10**9)}, {}, id="retry-after-far-date"),
    pytest.param(
        None,
        {"x-ratelimit-limit-requests": "0", "x-ratelimit-limit-tokens": "100000"},
        id="limit-requests-0",
    ),
    pytest.param(
        None,
        {"x-ratelimit-limit-requests": "100", "x-ratelimit-limit-tokens": "-5"},
        id="limit-tokens-negative",
    ),
    pytest.param(
        None,
        {"x-ratelimit-limit-requests": "100", "x-ratelimit-limit-tokens": "0"},
        id="limit-tokens-0",
    ),
]


@pytest.mark.parametrize(("first", "always"), HOSTILE)
def test_every_call_of_four_ends_with_an_answer_or_a_typed_error(
    first: dict[str, str] | None, always: dict[str, str]
) -> None:
    outcomes: list[object] = []
    with _serving(first, always) as url:
        model = ChatAfarensis(
            api_key="sk-test", base_url=f"{url}/v1", rate_limiter=AfarensisRateLimiter()
        )

        def four_calls() -> None:
            for _ in range(4):
                try:
                    outcomes.append(model.invoke("Hello"))
                except Exception as error:  # recorded, judged below
                    outcomes.append(error)

        calls = threading.Thread(target=four_calls, daemon=True)
        calls.start()
        calls.join(DEADLINE)
    assert len(outcomes) == 4, f"{len(outcomes)} of 4 calls ended in {DEADLINE:.0f} s"
    assert all(isinstance(o, AIMessage | AfarensisError) for o in outcomes), outcomes
    if first is None:  # a limit of zero or less is not learned: nothing stops the calls
        assert all(isinstance(o, AIMessage) for o in outcomes), outcomes
    else:
        kept = first.get("retry-after") == "inf"  # ignored: a short pause, then answers
        assert all(isinstance(o, RateLimitError) for o in outcomes[1:]) != kept, outcomes
    for error in outcomes[1:]:
        if isinstance(error, RateLimitError):
            assert error.retry_after is not None
            assert error.retry_after > 10**8
            assert "max_retry_after" in error.message


def test_a_retry_after_http_date_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(
        "langchain_afarensis_vision.chat_models._transport.time.sleep", slept.append
    )
    with _serving({"retry-after": _http_date(30)}, {}) as url:
        model = ChatAfarensis(api_key="sk-test", base_url=f"{url}/v1", max_retries=1)
        assert model.invoke("Hello").content == "a picture"
    assert slept == [pytest.approx(30, abs=3)]  # not the 0.5 s backoff


def test_caption_goes_on_after_a_429_that_asks_for_a_billion_seconds(tmp_path: Path) -> None:
    images = []
    for n in range(4):
        (path := tmp_path / f"{n}.png").write_bytes(numbered_png(n))
        images.append(str(path))
    out = tmp_path / "out.jsonl"
    with _serving({"retry-after": "1e9"}, {}) as url:
        env = {"AFARENSIS_API_KEY": "sk-test", "AFARENSIS_BASE_URL": f"{url}/v1"}
        run = run_cli("caption", *images, "-o", str(out), env=env, timeout=120)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 4, run
    assert {record["error"]["type"] for record in records} == {"RateLimitError"}
    assert "Traceback" not in run.err
