"""Retries, backoff, error mapping and secrecy, on a scripted transport."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import pytest

from langchain_afarensis_vision import (
    AfarensisError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ChatAfarensis,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from langchain_afarensis_vision.chat_models._transport import RetryPolicy
from tests._mock_api import MockAPI, completion, error, sse, text_stream

KEY = "sk-test-secret-key-0123456789"
Make = Callable[..., ChatAfarensis]


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the backoff sleeps instead of sleeping."""
    slept: list[float] = []

    async def asleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("time.sleep", slept.append)
    monkeypatch.setattr("asyncio.sleep", asleep)
    return slept


@pytest.mark.parametrize(
    ("status", "code", "exc"),
    [
        pytest.param(400, "invalid_image_format", BadRequestError, id="400"),
        pytest.param(401, "invalid_api_key", AuthenticationError, id="401"),
        pytest.param(403, "forbidden", PermissionDeniedError, id="403"),
        pytest.param(404, "model_not_found", NotFoundError, id="404"),
        pytest.param(422, "invalid_value", APIStatusError, id="422-generic-status"),
    ],
)
def test_client_errors_are_mapped_and_never_retried(
    api: MockAPI,
    make_model: Make,
    sleeps: list[float],
    status: int,
    code: str,
    exc: type[APIStatusError],
) -> None:
    api.queue(error(status, code, "the reason"))
    model = make_model(max_retries=3)
    with pytest.raises(exc) as raised:
        model.invoke("hi")
    assert len(api.requests) == 1
    assert sleeps == []
    err = raised.value
    assert type(err) is exc
    assert err.response is not None
    assert err.response.status == status
    assert err.response.data["error"]["code"] == code
    assert err.code == code
    assert f"Error code: {status} - {code}: the reason" == err.message


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_retry_then_raise(
    api: MockAPI, make_model: Make, sleeps: list[float], status: int
) -> None:
    api.queue(error(status, "server_error"))
    with pytest.raises(InternalServerError):
        make_model(max_retries=2).invoke("hi")
    assert len(api.requests) == 3
    assert len(sleeps) == 2
    assert sleeps[0] < sleeps[1]


def test_retry_then_success(api: MockAPI, make_model: Make, sleeps: list[float]) -> None:
    api.queue(error(503, "server_error"), httpx2.ConnectError("refused"), completion("ok"))
    assert make_model(max_retries=2).invoke("hi").content == "ok"
    assert len(api.requests) == 3


def test_rate_limit_honours_retry_after(
    api: MockAPI, make_model: Make, sleeps: list[float]
) -> None:
    api.queue(error(429, "rate_limit_exceeded", headers={"retry-after": "1.5"}), completion("ok"))
    assert make_model(max_retries=1).invoke("hi").content == "ok"
    assert sleeps == [1.5]


def test_rate_limit_with_a_long_retry_after_is_not_waited_for(
    api: MockAPI, make_model: Make, sleeps: list[float]
) -> None:
    api.queue(
        error(
            429,
            "rate_limit_exceeded",
            headers={"retry-after": "3600", "x-ratelimit-remaining-requests": "0"},
        )
    )
    with pytest.raises(RateLimitError) as raised:
        make_model(max_retries=5).invoke("hi")
    assert raised.value.retry_after == 3600
    assert raised.value.response is not None
    assert raised.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert sleeps == []
    assert len(api.requests) == 1


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        pytest.param({"retry-after-ms": "1000000000000"}, 1e9, id="ms"),
        pytest.param({"retry-after": "1e9"}, 1e9, id="seconds"),
        pytest.param({"retry-after": "Fri, 01 Jan 2100 00:00:00 GMT"}, 2e9, id="http-date"),
    ],
)
def test_every_form_of_a_long_retry_after_is_raised_at_once(
    api: MockAPI, make_model: Make, sleeps: list[float], headers: dict[str, str], retry_after: float
) -> None:
    api.queue(error(429, "rate_limit_exceeded", headers=headers))
    with pytest.raises(RateLimitError) as raised:
        make_model(max_retries=5).invoke("hi")
    assert raised.value.retry_after == pytest.approx(retry_after, rel=0.5)
    assert (sleeps, len(api.requests)) == ([], 1)


@pytest.mark.parametrize(("max_retry_after", "slept"), [(120, [90.0]), (89, [])])
def test_max_retry_after_is_a_setting(
    api: MockAPI, make_model: Make, sleeps: list[float], max_retry_after: float, slept: list[float]
) -> None:
    api.queue(error(429, "rate_limit_exceeded", headers={"retry-after": "90"}), completion("ok"))
    model = make_model(max_retries=1, max_retry_after=max_retry_after)
    if slept:
        assert model.invoke("hi").content == "ok"
    else:
        with pytest.raises(RateLimitError):
            model.invoke("hi")
    assert sleeps == slept


def test_non_finite_or_negative_retry_after_falls_back_to_backoff(
    api: MockAPI, make_model: Make, sleeps: list[float]
) -> None:
    for value in ("inf", "nan", "-3"):
        api.queue(error(429, "rate_limit_exceeded", headers={"retry-after": value}))
    api.queue(completion("ok"))
    assert make_model(max_retries=3).invoke("hi").content == "ok"
    assert len(sleeps) == 3
    assert all(0 < sleep <= 2 for sleep in sleeps)


@pytest.mark.parametrize(
    ("failure", "exc"),
    [
        pytest.param(httpx2.ConnectError("refused"), APIConnectionError, id="connect"),
        pytest.param(httpx2.ReadTimeout("slow"), APITimeoutError, id="timeout"),
        pytest.param(httpx2.RemoteProtocolError("dropped"), APIConnectionError, id="dropped"),
    ],
)
async def test_connection_errors_retry_then_raise_async(
    api: MockAPI, make_model: Make, sleeps: list[float], failure: Exception, exc: type
) -> None:
    api.queue(failure)
    with pytest.raises(exc):
        await make_model(max_retries=2).ainvoke("hi")
    assert len(api.requests) == 3
    assert len(sleeps) == 2


def test_backoff_is_exponential_capped_and_jittered() -> None:
    err = APIConnectionError("x")
    no_jitter = RetryPolicy(max_retries=10, jitter=lambda: 0.0)
    full_jitter = RetryPolicy(max_retries=10, jitter=lambda: 1.0)
    assert [no_jitter.delay(n, err) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert [full_jitter.delay(n, err) for n in range(3)] == [0.375, 0.75, 1.5]
    assert no_jitter.delay(10, err) is None
    assert no_jitter.delay(0, AfarensisError("not retryable")) is None


def test_missing_key_fails_at_request_time_naming_the_variable(api: MockAPI) -> None:
    model = ChatAfarensis(**api.clients())  # constructing without a key is fine
    with pytest.raises(AfarensisError, match="AFARENSIS_API_KEY"):
        model.invoke("hi")
    assert api.requests == []


def test_key_is_sent_as_bearer_and_never_shown(
    api: MockAPI, make_model: Make, caplog: pytest.LogCaptureFixture, sleeps: list[float]
) -> None:
    caplog.set_level(logging.DEBUG)
    api.queue(
        error(500, "server_error", headers={"set-cookie": f"k={KEY}"}),
        error(401, "invalid_api_key", f"Incorrect API key provided: {KEY[:3]}***"),
    )
    model = make_model(max_retries=1)
    with pytest.raises(AuthenticationError) as raised:
        model.invoke("hi")
    assert api.requests[0].headers["authorization"] == f"Bearer {KEY}"
    err = raised.value
    assert err.response is not None
    shown = [repr(model), str(model), str(err), repr(err), repr(err.response), caplog.text]
    shown += [str(model.model_dump()), str(model._identifying_params)]
    for text in shown:
        assert KEY not in text
    assert "set-cookie" not in {k.lower() for k in err.response.headers}


async def _drain(chunks: AsyncIterator[Any]) -> list[Any]:
    return [chunk async for chunk in chunks]


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda model: model.invoke("hi"), id="invoke"),
        pytest.param(lambda model: asyncio.run(_drain(model.astream("hi"))), id="astream"),
    ],
)
def test_each_attempt_sends_the_key_and_each_failure_masks_it(
    api: MockAPI, make_model: Make, sleeps: list[float], call: Callable[[ChatAfarensis], Any]
) -> None:
    sent: list[str] = []

    def refuse(request: httpx2.Request) -> httpx2.Response:
        sent.append(request.headers["authorization"])
        raise httpx2.ConnectError("refused", request=request)

    api.queue(refuse)
    with pytest.raises(APIConnectionError) as raised:
        call(make_model(max_retries=2))
    assert sent == [f"Bearer {KEY}"] * 3  # a retry is not sent with a masked key
    assert len(sleeps) == 2
    cause = raised.value.__cause__
    assert isinstance(cause, httpx2.ConnectError)
    assert {r.headers["authorization"] for r in [cause.request, *api.requests]} == {
        "Bearer [redacted]"
    }


def test_stream_cut_mid_way_raises_a_connection_error(api: MockAPI, make_model: Make) -> None:
    api.queue(sse(text_stream("Hel", "lo"), done=False))
    chunks: list[Any] = []
    with pytest.raises(APIConnectionError, match="before \\[DONE\\]"):
        chunks.extend(make_model().stream("hi"))
    assert "".join(str(c.content) for c in chunks) == "Hello"


async def test_stream_error_status_is_mapped_and_retried(
    api: MockAPI, make_model: Make, sleeps: list[float]
) -> None:
    api.queue(error(503, "server_error"), sse(text_stream("ok")))
    chunks = [c async for c in make_model(max_retries=1).astream("hi")]
    assert "".join(str(c.content) for c in chunks) == "ok"
    assert len(sleeps) == 1


def test_stream_with_a_malformed_event(api: MockAPI, make_model: Make) -> None:
    api.queue(
        httpx2.Response(
            200, text="data: {not json\n\n", headers={"content-type": "text/event-stream"}
        )
    )
    with pytest.raises(APIConnectionError, match="not JSON"):
        list(make_model().stream("hi"))


def test_a_body_that_is_not_json(api: MockAPI, make_model: Make) -> None:
    api.queue(httpx2.Response(200, text="<html>gateway</html>"))
    with pytest.raises(APIConnectionError, match="not JSON"):
        make_model().invoke("hi")


def test_abatch_keeps_every_result_in_order(api: MockAPI, make_model: Make) -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        prompt = request.read().decode()
        if "fail" in prompt:
            return error(400, "invalid_value", "bad prompt")
        word = prompt.split('"content":"')[1].split('"')[0]
        return httpx2.Response(200, json=completion(f"echo {word}"))

    api.queue(answer)
    prompts = ["a", "fail1", "b", "c", "fail2", "d"]
    results: list[Any] = asyncio.run(
        make_model().abatch(prompts, return_exceptions=True)  # type: ignore[arg-type]
    )
    assert [getattr(r, "content", type(r).__name__) for r in results] == [
        "echo a",
        "BadRequestError",
        "echo b",
        "echo c",
        "BadRequestError",
        "echo d",
    ]


# -- the server's request id ----------------------------------------------------------------------

RID = {"x-request-id": "req_0123abcd"}


@pytest.mark.parametrize("status", [400, 401, 404, 429, 500])
def test_status_errors_carry_the_request_id(api: MockAPI, make_model: Make, status: int) -> None:
    api.queue(error(status, "invalid_value", "the reason", headers=RID))
    with pytest.raises(APIStatusError) as raised:
        make_model().invoke("hi")
    assert raised.value.request_id == "req_0123abcd"
    assert raised.value.message.endswith("the reason (request id req_0123abcd)")


async def test_async_status_errors_carry_the_request_id(api: MockAPI, make_model: Make) -> None:
    api.queue(error(400, "invalid_image", headers=RID))
    with pytest.raises(BadRequestError) as raised:
        await make_model().ainvoke("hi")
    assert raised.value.request_id == "req_0123abcd"


def test_a_stream_cut_short_carries_the_request_id(api: MockAPI, make_model: Make) -> None:
    cut = sse(text_stream("Hel"), done=False)
    api.queue(httpx2.Response(200, content=cut.content, headers={**cut.headers, **RID}))
    with pytest.raises(APIConnectionError, match="before \\[DONE\\]") as raised:
        list(make_model().stream("hi"))
    assert raised.value.request_id == "req_0123abcd"


def test_an_error_event_in_a_stream_carries_the_request_id(api: MockAPI, make_model: Make) -> None:
    body = {"error": {"message": "overloaded", "type": "server_error", "code": None}}
    text = f"data: {json.dumps(body)}\n\n"
    api.queue(httpx2.Response(200, text=text, headers={"content-type": "text/event-stream", **RID}))
    with pytest.raises(InternalServerError) as raised:
        list(make_model().stream("hi"))
    assert raised.value.request_id == "req_0123abcd"


def test_no_request_id_without_the_header(api: MockAPI, make_model: Make) -> None:
    api.queue(error(400, "invalid_value"))
    with pytest.raises(BadRequestError) as raised:
        make_model().invoke("hi")
    assert raised.value.request_id is None
    assert "request id" not in raised.value.message


@pytest.mark.enable_socket
@pytest.mark.allow_hosts(["127.0.0.1"])
async def test_nothing_listening_names_the_base_url_and_what_to_do() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = ChatAfarensis(
        api_key=KEY, base_url=f"http://user:pw@127.0.0.1:{port}/v1?k={KEY}", max_retries=0
    )
    with pytest.raises(APIConnectionError) as sync_error:
        model.invoke("hi")
    with pytest.raises(APIConnectionError) as async_error:
        await model.ainvoke("hi")
    for message in (str(sync_error.value), str(async_error.value)):
        assert f"cannot reach http://127.0.0.1:{port}/v1 (" in message
        assert "AFARENSIS_BASE_URL" in message
        assert KEY not in message
        assert "pw" not in message
