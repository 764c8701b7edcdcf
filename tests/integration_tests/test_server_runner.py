"""LocalAfarensisServer's life cycle, the CLI glue, the missing-extra message, and OCR."""

from __future__ import annotations

import io
import re
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import httpx2
import pytest
from PIL import Image, ImageDraw, ImageFont

from langchain_afarensis_vision._api import tokenizer
from langchain_afarensis_vision.server import LocalAfarensisServer, _ocr, _validation
from langchain_afarensis_vision.server._cli import serve_main
from langchain_afarensis_vision.server.engine import why_no_ocr
from tests.integration_tests.conftest import authed, body, data_url, image_part, ok_json, user

pytestmark = pytest.mark.enable_socket

HELLO = body({"role": "user", "content": "Hello"})


def _server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("afarensis-local-")]


def test_start_and_stop_are_quick_and_clean() -> None:
    before = len(_server_threads())
    server = LocalAfarensisServer()
    with server:
        assert server.running
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", server.base_url)
        assert server.api_key.startswith("sk-local-")
        assert server.api_key not in repr(server)
        with authed(server) as client:  # a keep-alive connection stays open during stop()
            ok_json(client.post("/chat/completions", json=HELLO))
            server.stop()
    assert not server.running
    assert len(_server_threads()) == before
    assert server.start_seconds is not None
    assert server.start_seconds < 1.0
    assert server.stop_seconds is not None
    assert server.stop_seconds < 1.0
    server.stop()  # idempotent


def test_restart_and_fixed_port() -> None:
    server = LocalAfarensisServer(api_key="sk-local-fixed")
    port = server.start().port
    server.stop()
    server.start()
    try:
        assert server.api_key == "sk-local-fixed"
        with authed(server) as client:
            assert client.get("/models").status_code == 200
        with pytest.raises(OSError):  # the port is taken
            LocalAfarensisServer(port=server.port).start()
    finally:
        server.stop()
    assert port > 0


def test_stop_does_not_wait_for_a_stalled_client() -> None:
    server = LocalAfarensisServer(graceful_seconds=0.5).start()
    stalled = socket.create_connection(("127.0.0.1", server.port))
    try:
        stalled.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 99\r\n\r\n"
        )
        began = time.perf_counter()
        server.stop()
        assert time.perf_counter() - began < 3.0
    finally:
        stalled.close()


def test_serve_main(capsys: pytest.CaptureFixture[str]) -> None:
    for cached in (tokenizer._encoding, _validation._validator, _ocr._engine):
        cached.cache_clear()  # as in a new process: serve_main loads each before it listens
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(serve_main("127.0.0.1", 0, "sk-local-cli", 5, None, stop=stop))
    )
    thread.start()
    try:
        deadline = time.monotonic() + 60  # it first answers a warm-up request, loads OCR
        while "export AFARENSIS_API_KEY" not in (out := capsys.readouterr().out):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        url = re.search(r"^export AFARENSIS_BASE_URL=(\S+)$", out, re.MULTILINE)
        assert url is not None
        assert "export AFARENSIS_API_KEY=sk-local-cli" in out
        assert "5 requests per minute" in out
        response = httpx2.post(
            f"{url.group(1)}/chat/completions",
            json=HELLO,
            headers={"authorization": "Bearer sk-local-cli"},
        )
        assert response.headers["x-ratelimit-limit-requests"] == "5"
        assert response.headers["x-ratelimit-remaining-requests"] == "4"  # warm-up not counted
        # the first request's one-time work was done before it listened
        assert tokenizer._encoding.cache_info().currsize == 1
        assert _validation._validator.cache_info().currsize == 1
        assert _ocr._engine.cache_info().currsize == int(_ocr.available())
    finally:
        stop.set()
        thread.join(10)
    assert result == [0]


def test_missing_extra_names_the_install_command() -> None:
    code = (
        "import sys; sys.modules['starlette'] = None\n"
        "try:\n    import langchain_afarensis_vision.server\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert 'pip install ".[server]" in a clone of langchain-afarensis-vision' in out


def test_ocr_can_be_off(client: httpx2.Client) -> None:
    answer = ok_json(
        client.post("/chat/completions", json=body(user("Text?", image_part(_text_png()))))
    )
    assert f"Text: {why_no_ocr()}" in answer["choices"][0]["message"]["content"]


def test_ocr_reads_text(start_server: Any) -> None:
    server = start_server(ocr=True)
    payload = body(user("What does it say?", image_part(_text_png())))
    with authed(server) as client:
        answer = ok_json(client.post("/chat/completions", json=payload))
        facts = ok_json(
            client.post(
                "/chat/completions", json={**payload, "response_format": {"type": "json_object"}}
            )
        )
    assert "Text read, line by line:\nHello OCR 42" in answer["choices"][0]["message"]["content"]
    import json

    assert json.loads(facts["choices"][0]["message"]["content"])["images"][0]["text"] == (
        "Hello OCR 42"
    )


def _text_png() -> str:
    image = Image.new("RGB", (400, 120), "white")
    ImageDraw.Draw(image).text(
        (20, 30), "Hello OCR 42", fill="black", font=ImageFont.load_default(size=40)
    )
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return data_url(buffer.getvalue())
