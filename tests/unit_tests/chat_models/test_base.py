"""ChatAfarensis at the wire level: payloads, responses, streams, tools, token counting.

Parsing lives in test_responses.py, tool fields and structured output in test_structured.py.
"""

from __future__ import annotations

import base64
import io
import json
import socket
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.tools import tool
from PIL import Image

from langchain_afarensis_vision import AfarensisRateLimiter, ChatAfarensis
from langchain_afarensis_vision._sources.urls import UrlPolicy
from langchain_afarensis_vision.errors import InvalidRequestError
from tests._mock_api import MockAPI, chunk, completion, sse, text_stream

Make = Callable[..., ChatAfarensis]


def merge(chunks: list[Any]) -> AIMessageChunk:
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    full: AIMessageChunk = chunks[0]
    for c in chunks[1:]:
        full = full + c
    return full


@tool
def get_weather(city: str) -> str:
    """Get the weather in a city."""
    return f"sunny in {city}"


def test_invoke_payload_and_result(api: MockAPI, make_model: Make) -> None:
    api.queue(completion("A cat.", usage=(800, 3)))
    result = make_model().invoke("What's this?")
    assert api.bodies == [
        {
            "model": "gpt-4-vision-preview",
            "messages": [{"role": "user", "content": "What's this?"}],
            "max_tokens": 1024,
        }
    ]
    assert isinstance(result, AIMessage)
    assert result.content == "A cat."
    assert result.usage_metadata == {"input_tokens": 800, "output_tokens": 3, "total_tokens": 803}
    assert result.response_metadata == {
        "model_name": "gpt-4-vision-preview",
        "finish_reason": "stop",
        "system_fingerprint": "fp_test",
        "id": "chatcmpl-123",
        "model_provider": "afarensis",
        "token_usage": {"prompt_tokens": 800, "completion_tokens": 3, "total_tokens": 803},
    }


def test_parameters_reach_the_wire(api: MockAPI, make_model: Make) -> None:
    api.queue(completion())
    model = make_model(temperature=0.2, max_tokens=300, stop=["END"], model_kwargs={"seed": 7})
    model.invoke("hi", top_p=0.5)
    body = api.bodies[0]
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 300
    assert body["stop"] == ["END"]
    assert body["seed"] == 7
    assert body["top_p"] == 0.5
    assert api.requests[0].url == "https://api.afarensis.com/v1/chat/completions"


def test_base_url_and_headers(api: MockAPI, make_model: Make) -> None:
    api.queue(completion())
    make_model(base_url="http://127.0.0.1:9/v1/", default_headers={"x-team": "vision"}).invoke("x")
    request = api.requests[0]
    assert str(request.url) == "http://127.0.0.1:9/v1/chat/completions"
    assert request.headers["x-team"] == "vision"
    assert request.headers["user-agent"].startswith("langchain-afarensis-vision/")


async def test_model_override_everywhere(api: MockAPI, make_model: Make) -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        if body.get("stream"):
            return sse(
                [
                    chunk({"content": "x"}, model=body["model"]),
                    chunk({}, finish_reason="stop", model=body["model"]),
                ]
            )
        return httpx2.Response(200, json=completion(model=body["model"]))

    api.queue(answer)
    model = make_model()
    assert model.invoke("hi", model="gpt-4-turbo").response_metadata["model_name"] == "gpt-4-turbo"
    assert (await model.ainvoke("hi", model="m2")).response_metadata["model_name"] == "m2"
    merged = merge(list(model.stream("hi", model="m3")))
    assert merged.response_metadata["model_name"] == "m3"
    assert [b["model"] for b in api.bodies] == ["gpt-4-turbo", "m2", "m3"]
    assert model._get_ls_params(model="m4")["ls_model_name"] == "m4"


def test_ls_params() -> None:
    model = ChatAfarensis(temperature=0.5, max_tokens=10, stop=["x"])
    assert model._get_ls_params() == {
        "ls_provider": "afarensis",
        "ls_model_name": "gpt-4-vision-preview",
        "ls_model_type": "chat",
        "ls_temperature": 0.5,
        "ls_max_tokens": 10,
        "ls_stop": ["x"],
    }


def test_env_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFARENSIS_API_KEY", "sk-from-env")
    monkeypatch.setenv("AFARENSIS_BASE_URL", "http://localhost:1234/v1")
    model = ChatAfarensis()
    assert model.api_key is not None
    assert model.api_key.get_secret_value() == "sk-from-env"
    assert model.base_url == "http://localhost:1234/v1"
    assert "sk-from-env" not in repr(model)


def test_stream_payload_and_merged_chunks(api: MockAPI, make_model: Make) -> None:
    api.queue(sse(text_stream("A ", "red ", "square.", usage=(90, 4))))
    chunks = list(make_model().stream("Describe"))
    assert api.bodies[0]["stream"] is True
    assert api.bodies[0]["stream_options"] == {"include_usage": True}
    full = merge(chunks)
    assert full.content == "A red square."
    assert full.usage_metadata == {"input_tokens": 90, "output_tokens": 4, "total_tokens": 94}
    assert full.response_metadata["model_name"] == "gpt-4-vision-preview"
    assert full.response_metadata["finish_reason"] == "stop"
    assert full.chunk_position == "last"


def test_stream_usage_off(api: MockAPI, make_model: Make) -> None:
    api.queue(sse(text_stream("hi", usage=None)))
    list(make_model(stream_usage=False).stream("x"))
    assert "stream_options" not in api.bodies[0]


async def test_streaming_flag_routes_invoke_through_the_stream(
    api: MockAPI, make_model: Make
) -> None:
    api.queue(sse(text_stream("streamed")))
    result = await make_model(streaming=True).ainvoke("x")
    assert result.content == "streamed"
    assert api.bodies[0]["stream"] is True


def test_bind_tools_sends_tools_and_reads_tool_calls(api: MockAPI, make_model: Make) -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    api.queue(completion(None, tool_calls=[call], finish_reason="tool_calls"))
    model = make_model().bind_tools([get_weather], tool_choice="any")
    result = model.invoke("Weather in Paris?")
    body = api.bodies[0]
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather"]
    assert body["tool_choice"] == "required"
    assert isinstance(result, AIMessage)
    assert result.tool_calls == [
        {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1", "type": "tool_call"}
    ]


def test_streamed_tool_call_deltas(api: MockAPI, make_model: Make) -> None:
    def call_delta(**function: str) -> dict[str, Any]:
        head = (
            {"index": 0, "id": "call_9", "type": "function"} if "name" in function else {"index": 0}
        )
        return {"tool_calls": [{**head, "function": function}]}

    api.queue(
        sse(
            [
                chunk({"role": "assistant", **call_delta(name="get_weather", arguments="")}),
                chunk(call_delta(arguments='{"city": ')),
                chunk(call_delta(arguments='"Oslo"}')),
                chunk({}, finish_reason="tool_calls"),
                chunk(usage=(20, 5)),
            ]
        )
    )
    full = merge(list(make_model().bind_tools([get_weather]).stream("x")))
    assert full.tool_calls == [
        {"name": "get_weather", "args": {"city": "Oslo"}, "id": "call_9", "type": "tool_call"}
    ]


def test_model_profile() -> None:
    profile = ChatAfarensis().profile
    assert profile is not None
    assert profile["image_inputs"] is True
    assert profile["image_url_inputs"] is True
    assert profile["image_tool_message"] is True
    assert profile["max_input_tokens"] == 128_000
    assert profile["tool_calling"] is True


def _png_b64(width: int, height: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _count(model: ChatAfarensis, *blocks: dict[str, Any], **kwargs: Any) -> int:
    message = HumanMessage(content=[{"type": "text", "text": "abcd"}, *blocks])
    return model.get_num_tokens_from_messages([message], **kwargs)


def test_token_counting_uses_the_model_image_detail() -> None:
    # The counting itself (text, framing, tools, images at each detail) is in test_tokens.py.
    image = {"type": "image", "base64": _png_b64(1024, 1024), "mime_type": "image/png"}
    # 3 for the reply, 3 for the message, 1 for "user", 1 for "abcd", then the image.
    assert _count(ChatAfarensis(), image) == 3 + 3 + 1 + 1 + 765
    assert _count(ChatAfarensis(image_detail="low"), image) == 3 + 3 + 1 + 1 + 85


PUBLIC_IP = "93.184.216.34"


def _image_host(
    answer: Callable[[httpx2.Request], httpx2.Response], dns: dict[str, str]
) -> UrlPolicy:
    """A URL policy whose names resolve from ``dns`` and whose requests ``answer`` answers."""

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        if host not in dns:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (dns[host], port))]

    client = httpx2.Client(transport=httpx2.MockTransport(answer))
    return UrlPolicy(client=client, getaddrinfo=getaddrinfo)


def test_token_counting_can_read_url_image_sizes() -> None:
    png = base64.b64decode(_png_b64(500, 500))
    seen: list[httpx2.Request] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        if request.url.path == "/missing.png":
            return httpx2.Response(404)
        return httpx2.Response(200, content=png)

    model = ChatAfarensis(api_key="sk-test")
    policy = _image_host(answer, {"example.com": PUBLIC_IP})
    base = _count(model)
    url = {"type": "image", "url": "https://example.com/x.png"}
    assert _count(model, url, fetch_image_sizes=True, url_policy=policy) - base == 255
    missing = {"type": "image", "url": "https://example.com/missing.png"}
    assert _count(model, missing, fetch_image_sizes=True, url_policy=policy) - base == 1445
    assert [str(r.url) for r in seen] == [
        f"https://{PUBLIC_IP}/x.png",  # the checked address, with the name in Host and SNI
        f"https://{PUBLIC_IP}/missing.png",
    ]
    for request in seen:
        assert request.headers["host"] == "example.com"
        assert "authorization" not in request.headers  # the key never goes to image hosts


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/x.png", "http://[::1]/x.png", "http://2130706433/x.png"]
)
def test_token_counting_refuses_loopback_image_urls(
    url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_connection(*args: Any, **kwargs: Any) -> httpx2.Response:
        raise AssertionError("no connection may be made")

    monkeypatch.setattr(httpx2.Client, "send", no_connection)
    transport = httpx2.MockTransport(no_connection)  # nor through the model's own client
    model = ChatAfarensis(api_key="sk-test", http_client=httpx2.Client(transport=transport))
    image = {"type": "image", "url": url}
    assert _count(model, image, fetch_image_sizes=True) - _count(model) == 1445
    assert "is not public" in caplog.text
    assert "as 1445 tokens" in caplog.text


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://10.0.0.5/x.png", "10.0.0.5 is not public"),
        ("https://images.internal/x.png", "192.168.1.2 (which 'images.internal' resolves to)"),
    ],
)
def test_token_counting_refuses_a_redirect_to_a_private_address(
    location: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[httpx2.Request] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(302, headers={"location": location})

    dns = {"example.com": PUBLIC_IP, "images.internal": "192.168.1.2"}
    policy = _image_host(answer, dns)
    model = ChatAfarensis(api_key="sk-test")
    image = {"type": "image", "url": "https://example.com/x.png"}
    assert _count(model, image, fetch_image_sizes=True, url_policy=policy) - _count(model) == 1445
    assert len(seen) == 1  # the private hop was never requested
    assert reason in caplog.text


def test_get_num_tokens_counts_cl100k_offline() -> None:
    assert ChatAfarensis().get_num_tokens("x" * 40) == 5  # "xxxxxxxx" is one token


# -- one wire mapping per call ---------------------------------------------------------------


@pytest.mark.parametrize("how", ["invoke", "stream", "ainvoke", "astream"])
async def test_messages_are_mapped_to_the_wire_once_per_call(
    api: MockAPI, make_model: Make, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The payload and the rate limiter's cost come from one mapping (the cost rides along)."""
    from langchain_afarensis_vision import AfarensisRateLimiter
    from langchain_afarensis_vision.chat_models import _messages, _tokens, base

    calls: list[int] = []
    real = _messages.to_wire_messages

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    for module in (_messages, _tokens, base):  # wherever a mapping could be called from
        monkeypatch.setattr(module, "to_wire_messages", counted)
    limiter = AfarensisRateLimiter(requests_per_minute=1000, tokens_per_minute=1_000_000)
    charged: list[int] = []
    monkeypatch.setattr(limiter, "reserve_tokens", charged.append)

    async def areserve(tokens: int) -> None:
        charged.append(tokens)

    monkeypatch.setattr(limiter, "areserve_tokens", areserve)
    model = make_model(rate_limiter=limiter)
    image = {"type": "image", "base64": _png_b64(1600, 1200), "mime_type": "image/png"}
    message = HumanMessage(content=[{"type": "text", "text": "What is it?"}, image])
    api.queue(sse(text_stream("a ", "cat")) if how.endswith("stream") else completion("a cat"))
    match how:
        case "invoke":
            model.invoke([message])
        case "ainvoke":
            await model.ainvoke([message])
        case "stream":
            list(model.stream([message]))
        case "astream":
            [chunk async for chunk in model.astream([message])]
    assert calls == [1]
    calls.clear()  # the limiter was charged what the call costs, as counted offline
    assert charged == [model.get_num_tokens_from_messages([message]) + (model.max_tokens or 0)]


@pytest.mark.parametrize(
    ("call", "where"),
    [
        pytest.param(
            lambda m: m.invoke("hi \ud800 there"), r"messages\[0\].content \(character 3\)"
        ),
        pytest.param(
            lambda m: m.invoke([HumanMessage(content=[{"type": "text", "text": "a\udfff"}])]),
            r"messages\[0\].content\[0\].text \(character 1\)",
        ),
        pytest.param(lambda m: m.invoke("hi", stop=["\ud800"]), r"stop\[0\]"),
        pytest.param(lambda m: m.stream("\ud800").__next__(), r"messages\[0\].content"),
        pytest.param(lambda m: m.batch(["ok", "\ud800"])[1], r"messages\[0\].content"),
        pytest.param(lambda m: m.get_num_tokens("x\ud800"), r"the text \(character 1\)"),
        pytest.param(
            lambda m: m.get_num_tokens_from_messages([HumanMessage("\ud800")]),
            r"messages\[0\].content",
        ),
    ],
    ids=["invoke", "text-block", "stop", "stream", "batch", "get_num_tokens", "count-messages"],
)
def test_a_lone_surrogate_is_a_refused_request_naming_where(
    api: MockAPI, make_model: Make, call: Callable[[ChatAfarensis], object], where: str
) -> None:
    """Not a UnicodeEncodeError from the JSON encoder, nor a TypeError from the tokenizer."""
    api.queue(completion("ok"))
    model = make_model(rate_limiter=AfarensisRateLimiter())  # its cost count comes first
    with pytest.raises(InvalidRequestError, match=where + ".* lone surrogate"):
        call(model)
    assert all("\\ud800" not in r.content.decode() for r in api.requests)
