"""Fault injection: errors, 429s, dropped connections, cut streams, latency; all seeded."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx2
import pytest

from langchain_afarensis_vision.errors import APIConnectionError, InternalServerError
from langchain_afarensis_vision.server import Faults
from langchain_afarensis_vision.server.faults import CUT_AFTER_EVENTS
from tests.integration_tests.conftest import assert_error, authed, body, ok_json

pytestmark = pytest.mark.enable_socket

HELLO = body({"role": "user", "content": "Hello"})
MIXED = Faults(error_rate=0.3, rate_limit_rate=0.2, drop_connection_rate=0.1, cut_stream_rate=0.1)


def test_decisions_are_a_function_of_seed_and_number() -> None:
    first = [MIXED.decide(7, n) for n in range(1, 2001)]
    assert first == [MIXED.decide(7, n) for n in range(1, 2001)]
    assert first != [MIXED.decide(8, n) for n in range(1, 2001)]
    kinds: list[str] = [kind for kind, _ in first]
    for kind, rate in [("error", 0.3), ("rate_limit", 0.2), ("drop", 0.1), ("cut", 0.1)]:
        assert abs(kinds.count(kind) / len(kinds) - rate) < 0.04, kind
    statuses = {status for kind, status in first if kind == "error"}
    assert statuses == {500, 503}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"error_rate": 1.5},
        {"error_rate": 0.6, "rate_limit_rate": 0.6},
        {"error_statuses": (404,)},
        {"error_statuses": ()},
        {"latency": -1},
        {"answer_latency": -1},
    ],
)
def test_bad_faults_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        Faults(**kwargs)


def _statuses(server: Any, count: int) -> list[int]:
    with authed(server) as client:
        return [client.post("/chat/completions", json=HELLO).status_code for _ in range(count)]


def test_errors_are_seeded(start_server: Any) -> None:
    faults = Faults(error_rate=0.5, error_statuses=(500, 502, 503))
    first = _statuses(start_server(faults=faults, seed=3), 24)
    again = _statuses(start_server(faults=faults, seed=3), 24)
    other = _statuses(start_server(faults=faults, seed=4), 24)
    expected = [
        status if kind == "error" else 200
        for kind, status in (faults.decide(3, n) for n in range(1, 25))
    ]
    assert first == again == expected
    assert other != first
    assert {500, 502, 503, 200} <= set(first)


def test_error_bodies(start_server: Any) -> None:
    server = start_server(faults=Faults(error_rate=1.0, error_statuses=(503,)))
    with authed(server) as client:
        response = client.post("/chat/completions", json=HELLO)
        models = client.get("/models")  # faults touch chat completions only
    data = assert_error(response, 503, None, None)
    assert data["error"]["type"] == "server_error"
    assert "injected fault #1" in data["error"]["message"]
    assert models.status_code == 200


def test_injected_rate_limit(start_server: Any) -> None:
    server = start_server(faults=Faults(rate_limit_rate=1.0, retry_after=7), requests_per_minute=50)
    with authed(server) as client:
        response = client.post("/chat/completions", json=HELLO)
    assert_error(response, 429, "rate_limit_exceeded", None)
    assert response.headers["retry-after"] == "7"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert response.headers["x-ratelimit-reset-requests"] == "7s"
    assert response.headers["x-ratelimit-limit-requests"] == "50"


def test_dropped_connection(start_server: Any, make_chat: Any) -> None:
    server = start_server(faults=Faults(drop_connection_rate=1.0))
    with authed(server) as client, pytest.raises(httpx2.TransportError):
        client.post("/chat/completions", json=HELLO)
    with pytest.raises(APIConnectionError):
        make_chat(server).invoke("Hello")


def test_cut_stream(start_server: Any, make_chat: Any) -> None:
    server = start_server(faults=Faults(cut_stream_rate=1.0))
    received: list[str] = []
    streamed = {**HELLO, "stream": True}
    with authed(server) as client:
        ok_json(client.post("/chat/completions", json=HELLO))  # not streamed: not cut
        with (  # noqa: PT012 - the error comes while reading
            pytest.raises(httpx2.TransportError),
            client.stream("POST", "/chat/completions", json=streamed) as response,
        ):
            assert response.status_code == 200
            for line in response.iter_lines():  # keeps what came before the cut
                if line.startswith("data: "):
                    received.append(line)
    assert 1 <= len(received) <= CUT_AFTER_EVENTS
    assert "data: [DONE]" not in received
    chunks: list[str] = []
    with pytest.raises(APIConnectionError):  # noqa: PT012
        for chunk in make_chat(server, max_tokens=300).stream("Hello"):
            chunks.append(str(chunk.content))
    assert len(chunks) <= CUT_AFTER_EVENTS


def test_latency(start_server: Any) -> None:
    server = start_server(faults=Faults(latency=0.3))
    with authed(server) as client:
        began = time.perf_counter()
        ok_json(client.post("/chat/completions", json=HELLO))
        assert time.perf_counter() - began >= 0.3


def test_answer_latency_bills_a_client_that_gave_up(
    start_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="langchain_afarensis_vision.server")
    server = start_server(faults=Faults(answer_latency=0.5))
    with authed(server) as client, pytest.raises(httpx2.ReadTimeout):
        client.post("/chat/completions", json=HELLO, timeout=0.1)
    deadline = time.monotonic() + 10  # its line is written once the held answer goes out
    while time.monotonic() < deadline and not caplog.records:
        time.sleep(0.05)
    (line,) = [r.getMessage() for r in caplog.records if "chat/completions" in r.getMessage()]
    assert " 200 " in line
    assert " tokens=" in line  # answered, so billed, though the client had left


def test_client_retries_through_a_transient_error(start_server: Any, make_chat: Any) -> None:
    faults = Faults(error_rate=0.5, error_statuses=(503,))
    seed = next(
        s for s in range(1000) if [faults.decide(s, n)[0] for n in (1, 2)] == ["error", "none"]
    )
    server = start_server(faults=faults, seed=seed)
    assert make_chat(server, max_retries=1).invoke("Hello").content
    fails = next(s for s in range(1000) if faults.decide(s, 1)[0] == "error")
    with pytest.raises(InternalServerError):
        make_chat(start_server(faults=faults, seed=fails), max_retries=0).invoke("Hello")


async def test_in_process_drop_raises() -> None:
    from langchain_afarensis_vision.server import create_app

    app = create_app(api_key="k", faults=Faults(drop_connection_rate=1.0))
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://local/v1") as client:
        with pytest.raises(ConnectionResetError):
            await client.post(
                "/chat/completions", json=HELLO, headers={"authorization": "Bearer k"}
            )
