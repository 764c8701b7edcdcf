"""Every answer of the local server carries an ``x-request-id``; every request is logged, with
neither the key nor any image data in the line."""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import Callable

import httpx2
import openai
import pytest

from langchain_afarensis_vision.server import Faults, LocalAfarensisServer, create_app
from tests._schema import assert_valid
from tests._support import OPENAPI_SPEC, TEST_IMAGES
from tests.integration_tests.conftest import (
    assert_error,
    authed,
    body,
    data_url,
    image_part,
    ok_json,
    user,
)

pytestmark = pytest.mark.enable_socket

REQUEST_ID = re.compile(r"^req_[0-9a-f]{32}$")
LOGGER = "langchain_afarensis_vision.server"


def _id(response: httpx2.Response) -> str:
    request_id = response.headers.get("x-request-id", "")
    assert REQUEST_ID.match(request_id), response.headers
    return request_id


def test_every_answer_has_its_own_request_id(
    afarensis_server: LocalAfarensisServer, client: httpx2.Client
) -> None:
    image = data_url((TEST_IMAGES / "hopper.png").read_bytes())
    ok = client.post("/chat/completions", json=body(user("Colours?", image_part(image))))
    ok_json(ok)
    stream = client.post("/chat/completions", json=body(user("Hi"), stream=True))
    bad = client.post("/chat/completions", json={"model": "gpt-4-vision-preview"})
    assert_error(bad, 400, "invalid_value")
    lost = client.get("/nowhere")
    assert_valid("ErrorResponse", lost.json())
    no_key = httpx2.post(f"{afarensis_server.base_url}/chat/completions", json=body(user("Hi")))
    assert_error(no_key, 401, "invalid_api_key")
    health = httpx2.get(afarensis_server.base_url.removesuffix("/v1") + "/health")
    answers = [ok, stream, bad, lost, no_key, client.get("/models"), health]
    ids = [_id(answer) for answer in answers]
    assert len(set(ids)) == len(ids)


def test_injected_faults_have_a_request_id_too(
    start_server: Callable[..., LocalAfarensisServer],
) -> None:
    server = start_server(faults=Faults(error_rate=1.0), ocr=False)
    with authed(server) as client:
        failed = client.post("/chat/completions", json=body(user("Hi")))
    assert failed.status_code >= 500
    _id(failed)


async def test_an_unexpected_failure_is_a_500_with_a_request_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = create_app(api_key="k", ocr=False)

    def broken(*args: object) -> None:
        raise RuntimeError("engine broke")

    monkeypatch.setattr(app.state.afarensis.engine, "answer", broken)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://local/v1") as client:
        response = await client.post(
            "/chat/completions", json=body(user("Hi")), headers={"authorization": "Bearer k"}
        )
    assert response.status_code == 500
    assert_valid("ErrorResponse", response.json())
    assert "engine broke" in response.json()["error"]["message"]
    _id(response)


def test_the_openai_sdk_reads_the_request_id(afarensis_server: LocalAfarensisServer) -> None:
    with openai.OpenAI(
        base_url=afarensis_server.base_url, api_key=afarensis_server.api_key, max_retries=0
    ) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model="gpt-4-vision-preview",
            messages=[{"role": "user", "content": "Hi"}],
            max_tokens=20,
        )
        completion = raw.parse()
    assert REQUEST_ID.match(completion._request_id or "")
    assert completion._request_id == raw.headers["x-request-id"]


def test_each_request_is_logged_without_the_key_or_the_image(
    afarensis_server: LocalAfarensisServer,
    client: httpx2.Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = (TEST_IMAGES / "flower2.jpg").read_bytes()
    encoded = base64.b64encode(data).decode()
    caplog.set_level(logging.INFO, logger=LOGGER)
    answer = ok_json(
        client.post(
            "/chat/completions",
            json=body(user("What is it?", image_part(data_url(data, "image/jpeg")))),
        )
    )
    wrong = httpx2.post(
        f"{afarensis_server.base_url}/chat/completions",
        json=body(user("Hi", image_part(data_url(data, "image/jpeg")))),
        headers={"authorization": "Bearer sk-a-wrong-but-secret-key-42"},
    )
    assert wrong.status_code == 401
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(lines) == 2
    tokens = answer["usage"]["total_tokens"]
    assert re.fullmatch(
        rf"POST /v1/chat/completions 200 [0-9.]+ ms model=gpt-4-vision-preview images=1 "
        rf"tokens={tokens} id=req_[0-9a-f]{{32}}",
        lines[0],
    ), lines[0]
    assert re.fullmatch(r"POST /v1/chat/completions 401 [0-9.]+ ms id=req_[0-9a-f]{32}", lines[1])
    logged = "\n".join(lines)
    for secret in (afarensis_server.api_key, "sk-a-wrong-but-secret-key-42", "secret-key"):
        assert secret not in logged
    for chunk in (encoded[:40], encoded[1000:1040], "base64", "What is it?"):
        assert chunk not in logged


def test_the_animation_refusal_is_the_apis_not_this_librarys(client: httpx2.Client) -> None:
    gif = data_url((TEST_IMAGES / "iss634.gif").read_bytes(), "image/gif")
    refused = client.post("/chat/completions", json=body(user("Hi", image_part(gif))))
    message = assert_error(refused, 400, "animated_gif_not_supported")["error"]["message"]
    assert "animated GIF images are not supported" in message
    assert "first_frame" not in message


def test_a_stream_cut_short_is_logged_as_incomplete(
    start_server: Callable[..., LocalAfarensisServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    server = start_server(faults=Faults(cut_stream_rate=1.0), ocr=False)
    with authed(server) as client, pytest.raises(httpx2.TransportError):
        client.post("/chat/completions", json=body(user("Hi"), stream=True)).read()
    deadline = time.monotonic() + 10
    while not [r for r in caplog.records if r.name == LOGGER] and time.monotonic() < deadline:
        time.sleep(0.02)
    (line,) = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert " 200 (incomplete) " in line


def test_the_wire_schema_leaves_response_headers_open() -> None:
    """The OpenAPI spec declares no response headers, so ``x-request-id`` (like the
    ``x-ratelimit-*`` ones) breaks nothing in it; if it ever declares some, check ours here."""
    spec = json.loads(OPENAPI_SPEC.read_text())
    declared = [
        (path, method, status)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        for status, response in operation.get("responses", {}).items()
        if "headers" in response
    ]
    assert declared == []
