"""Real clients against the local server over HTTP: the openai SDK, requests, ChatAfarensis."""

from __future__ import annotations

import base64
from typing import Any

import httpx2
import openai
import pytest
import requests
from langchain_core.messages import AIMessageChunk, HumanMessage

from langchain_afarensis_vision import ChatAfarensis
from langchain_afarensis_vision._api.contract import text_tokens
from langchain_afarensis_vision.errors import (
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    RateLimitError,
)
from langchain_afarensis_vision.server import LocalAfarensisServer
from tests._schema import assert_valid
from tests._support import TEST_IMAGES
from tests.integration_tests.conftest import MODEL, data_url, image_bytes

pytestmark = pytest.mark.enable_socket

QUESTION = "What\u2019s in this image?"  # the product page's curly apostrophe


def _sdk(server: LocalAfarensisServer, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=server.api_key, **kwargs)


# -- the official openai SDK, unchanged --------------------------------------------------------


def test_openai_sdk(afarensis_server: LocalAfarensisServer) -> None:
    photo = base64.b64encode((TEST_IMAGES / "hopper.jpg").read_bytes()).decode()
    with _sdk(afarensis_server) as client:
        response = client.chat.completions.create(
            model=MODEL,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": QUESTION},
                        {
                            "type": "image_url",
                            "image_url": {"url": f"data:image/jpeg;base64,{photo}"},
                        },
                    ],
                }
            ],
            max_tokens=300,
        )
        assert_valid("CreateChatCompletionResponse", response.model_dump(exclude_unset=True))
        assert "a JPEG of 128 x 128 pixels" in (response.choices[0].message.content or "")
        assert response.usage is not None
        # 3 for the reply, 3 + 1 for the user message and its role, 6 for the question
        assert response.usage.prompt_tokens == 3 + 3 + 1 + text_tokens(QUESTION) + 255
        assert text_tokens(QUESTION) == 6
        assert response.system_fingerprint == "fp_local_afarensis"
        assert next(m.id for m in client.models.list()) == MODEL


def test_openai_sdk_stream(afarensis_server: LocalAfarensisServer) -> None:
    with _sdk(afarensis_server) as client:
        stream = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Hello"}],
            max_tokens=300,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Hello! I am the local Afarensis engine")
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


def test_openai_sdk_errors(afarensis_server: LocalAfarensisServer, start_server: Any) -> None:
    bad = openai.OpenAI(base_url=afarensis_server.base_url, api_key="sk-nope")
    with bad, pytest.raises(openai.AuthenticationError) as denied:
        bad.models.list()
    assert denied.value.code == "invalid_api_key"
    with _sdk(afarensis_server) as client, pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model=MODEL,
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": data_url(b"GIF89a")}}],
                }
            ],
        )
    assert refused.value.code == "invalid_image"
    limited = start_server(requests_per_minute=1)
    with _sdk(limited, max_retries=0) as client:
        client.models.list()
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "a"}])
        with pytest.raises(openai.RateLimitError) as slow_down:
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "b"}])
    assert slow_down.value.response.headers["retry-after"]


async def test_openai_async_sdk(afarensis_server: LocalAfarensisServer) -> None:
    async with openai.AsyncOpenAI(
        base_url=afarensis_server.base_url, api_key=afarensis_server.api_key
    ) as client:
        response = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hello"}], max_tokens=50
        )
    assert response.choices[0].message.content


# -- the product page's raw example ------------------------------------------------------------


def test_product_page_requests_example(afarensis_server: LocalAfarensisServer) -> None:
    api_key = afarensis_server.api_key

    def encode_image(image_path: str) -> str:
        with open(image_path, "rb") as image_file:
            return base64.b64encode(image_file.read()).decode("utf-8")

    base64_image = encode_image(str(TEST_IMAGES / "flower.jpg"))
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"}
    payload: dict[str, Any] = {
        "model": "gpt-4-vision-preview",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": QUESTION},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/jpeg;base64,{base64_image}"},
                    },
                ],
            }
        ],
        "max_tokens": 300,
    }
    url = f"{afarensis_server.base_url}/chat/completions"
    with requests.Session() as session:
        response = session.post(url, headers=headers, json=payload, timeout=30)
    assert response.status_code == 200
    answer = response.json()
    assert_valid("CreateChatCompletionResponse", answer)
    assert "a JPEG of 480 x 360 pixels" in answer["choices"][0]["message"]["content"]


# -- ChatAfarensis -----------------------------------------------------------------------------


def _photo_message(name: str = "flower.jpg") -> HumanMessage:
    data = base64.b64encode((TEST_IMAGES / name).read_bytes()).decode()
    return HumanMessage(
        content=[
            {"type": "text", "text": "Describe this photo."},
            {"type": "image", "base64": data, "mime_type": "image/jpeg"},
        ]
    )


def test_chat_invoke(make_chat: Any) -> None:
    answer = make_chat().invoke("Hello")
    assert answer.content.startswith("Hello! I am the local Afarensis engine")
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["input_tokens"] == 8
    assert answer.response_metadata["model_name"] == MODEL
    assert answer.response_metadata["system_fingerprint"] == "fp_local_afarensis"


def test_chat_image(make_chat: Any) -> None:
    answer = make_chat().invoke([_photo_message()])
    assert "a JPEG of 480 x 360 pixels" in answer.content
    assert "mostly green" in answer.content
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["input_tokens"] == 3 + 3 + 5 + 255


def test_chat_stream(make_chat: Any) -> None:
    chunks = list(make_chat().stream([_photo_message()]))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    full = chunks[0]
    for chunk in chunks[1:]:
        full += chunk
    assert "a JPEG of 480 x 360 pixels" in str(full.content)
    assert full.usage_metadata is not None
    assert full.usage_metadata["input_tokens"] == 3 + 3 + 5 + 255


def test_chat_model_override_and_stop(make_chat: Any) -> None:
    answer = make_chat().invoke("Hello", model="gpt-4-1106-vision-preview", stop=["engine"])
    assert answer.content == "Hello! I am the local Afarensis "
    assert answer.response_metadata["model_name"] == "gpt-4-1106-vision-preview"


def test_chat_tools_and_structured_output(make_chat: Any) -> None:
    def magic_function(input: int) -> int:  # LangChain's standard test tool
        """Apply a magic function to an input."""
        return input + 2

    called = make_chat().bind_tools([magic_function], tool_choice="any").invoke("magic(3)?")
    assert called.tool_calls[0]["name"] == "magic_function"
    assert called.tool_calls[0]["args"] == {"input": 0}  # a placeholder, not a real choice

    schema = {
        "title": "Caption",
        "type": "object",
        "properties": {"text": {"type": "string"}, "score": {"type": "number"}},
        "required": ["text", "score"],
    }
    for method in ("function_calling", "json_schema"):
        result = make_chat().with_structured_output(schema, method=method).invoke("caption?")
        assert result == {"text": "", "score": 0}, method


async def test_chat_async(afarensis_server: LocalAfarensisServer) -> None:
    async with httpx2.AsyncClient(timeout=30) as http:
        model = ChatAfarensis(
            base_url=afarensis_server.base_url,
            api_key=afarensis_server.api_key,
            http_async_client=http,
        )
        answer = await model.ainvoke([_photo_message("hopper.jpg")])
        assert "a JPEG of 128 x 128 pixels" in answer.content
        text = ""
        async for chunk in model.astream("Hello"):
            text += str(chunk.content)
        assert text.startswith("Hello! I am the local Afarensis engine")


def test_chat_errors_are_mapped(
    make_chat: Any, afarensis_server: LocalAfarensisServer, start_server: Any
) -> None:
    with pytest.raises(AuthenticationError) as denied:
        make_chat(api_key="sk-wrong").invoke("Hello")
    assert denied.value.status_code == 401
    assert denied.value.code == "invalid_api_key"
    assert denied.value.response is not None
    assert denied.value.response.data["error"]["type"] == "authentication_error"

    with pytest.raises(NotFoundError) as missing:
        make_chat(model="gpt-5").invoke("Hello")
    assert missing.value.code == "model_not_found"

    with pytest.raises(BadRequestError) as refused:
        make_chat(max_tokens=5000).invoke("Hello")
    assert (refused.value.code, refused.value.param) == ("invalid_value", "max_tokens")

    limited = start_server(requests_per_minute=1)
    model = make_chat(limited)
    model.invoke("Hello")
    with pytest.raises(RateLimitError) as slow_down:
        model.invoke("Hello")
    assert slow_down.value.retry_after is not None
    assert slow_down.value.retry_after > 50


def test_chat_url_image_is_fetched_by_the_server(make_chat: Any, image_host: Any) -> None:
    image_host.routes["/green.png"] = (200, image_bytes((640, 480), (0, 160, 0)), "image/png")
    message = HumanMessage(
        content=[
            {"type": "text", "text": "What colour?"},
            {"type": "image", "url": image_host.url("/green.png")},
        ]
    )
    answer = make_chat().invoke([message])
    assert "a PNG of 640 x 480 pixels" in answer.content
    assert "almost entirely green" in answer.content
