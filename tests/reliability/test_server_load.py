"""The local server under hostile requests: it keeps answering, and stays within its memory.

* While one hostile request is at work (40 WEBPs of 34 bytes that declare 9000 x 9000 pixels,
  under Pillow's own bomb warning, 1.5 million text parts, deep nesting, or images it must
  really decode), ``GET /health`` keeps answering: every poll is timed. The bound asserted is
  generous (1 s) so that a loaded 2-core CI machine cannot flake it; on an idle one the
  slowest poll takes tens of ms.
* The worst images of ``tests/hostile_images.server_worst_inputs`` (a few bytes or kB each,
  hundreds of MB decoded), 16 at once, to a server in a subprocess whose address space is
  capped (``RLIMIT_AS``): every answer is the right one (the API's 400, or a 200 from the
  header of an image the API takes), fast, and the server's peak resident memory (``VmHWM``)
  stays under 1 GB.
"""

from __future__ import annotations

import base64
import json
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest

from langchain_afarensis_vision.server import LocalAfarensisServer
from tests import hostile_images as hostile
from tests._support import ROOT

pytestmark = pytest.mark.enable_socket

HEALTH_BOUND = 1.0
"""Slowest ``/health`` answer allowed while a hostile request works (seconds; generous)."""
MEMORY_BOUND = 1024 * 1024 * 1024
"""Most the server's resident memory may reach while refusing the worst images."""
ADDRESS_SPACE_CAP = 3 * 1024 * 1024 * 1024
"""The server subprocess's address space (``RLIMIT_AS``): room for its threads' stacks and
arenas, not for a few decoded bombs."""
TIME_BOUND = 60.0
"""Most the 16 worst images may take to be refused, all together."""
MODEL = "gpt-4-vision-preview"


def _image(data: bytes) -> dict[str, Any]:
    url = f"data:image/webp;base64,{base64.b64encode(data).decode()}"
    return {"type": "image_url", "image_url": {"url": url}}


def _body(*parts: dict[str, Any]) -> bytes:
    content = [{"type": "text", "text": "What is this?"}, *parts]
    return json.dumps(
        {"model": MODEL, "max_tokens": 50, "messages": [{"role": "user", "content": content}]}
    ).encode()


def _text_parts(count: int) -> bytes:
    parts = b'{"type": "text", "text": "hello"},' * (count - 1) + b'{"type": "text", "text": "."}'
    return b'{"model": "%s", "messages": [{"role": "user", "content": [%s]}]}' % (
        MODEL.encode(),
        parts,
    )


def _nested(depth: int) -> bytes:
    body = json.loads(_body())
    return json.dumps(body).encode()[:-1] + b', "metadata": ' + b"[" * depth + b"]" * depth + b"}"


@dataclass(frozen=True)
class Hostile:
    build: Callable[[], bytes]
    status: int
    code: str | None


HOSTILE = {
    "40_webps_of_34_bytes_declaring_9000x9000": Hostile(
        lambda: _body(
            *(_image(hostile.tiny_huge_webp(9000, 9000, (n, 200, 30))) for n in range(40))
        ),
        200,  # the API takes them: answered from their headers, their pixels not examined
        None,
    ),
    "1.5M_text_parts": Hostile(lambda: _text_parts(1_500_000), 400, "invalid_value"),
    "100000_levels_of_nesting": Hostile(lambda: _nested(100_000), 400, "invalid_value"),
    "8_webps_of_4000x4000_decoded": Hostile(
        lambda: _body(
            *(_image(hostile.tiny_huge_webp(4000, 4000, (n * 30, 90, 200))) for n in range(8))
        ),
        200,
        None,
    ),
}


@pytest.fixture(scope="module")
def server() -> Iterator[LocalAfarensisServer]:
    with LocalAfarensisServer(ocr=False) as running:
        yield running


@pytest.mark.parametrize("name", HOSTILE)
def test_health_answers_while_a_hostile_request_works(
    name: str, server: LocalAfarensisServer
) -> None:
    case = HOSTILE[name]
    raw = case.build()
    answer: list[httpx2.Response] = []
    headers = {"authorization": f"Bearer {server.api_key}", "content-type": "application/json"}

    def send() -> None:
        url = f"{server.base_url}/chat/completions"
        answer.append(httpx2.post(url, content=raw, headers=headers, timeout=300))

    latencies: list[float] = []
    worker = threading.Thread(target=send)
    with httpx2.Client(timeout=30) as health:
        worker.start()
        while worker.is_alive() or not latencies:
            began = time.perf_counter()
            assert health.get(f"http://127.0.0.1:{server.port}/health").status_code == 200
            latencies.append(time.perf_counter() - began)
            time.sleep(0.02)
    worker.join()
    (response,) = answer
    assert response.status_code == case.status, response.text[:300]
    if case.code is not None:
        assert response.json()["error"]["code"] == case.code
    slowest = max(latencies)
    print(f"{name}: {len(latencies)} polls, slowest {slowest * 1000:.0f} ms")
    assert slowest < HEALTH_BOUND, f"/health took {slowest:.2f}s during the request"


# -- the worst images, 16 at once, to a capped server ------------------------------------------

_SERVE = """
import sys
from langchain_afarensis_vision.server import LocalAfarensisServer
server = LocalAfarensisServer(ocr=False, api_key="sk-local-worst-inputs-0123456789").start()
print(server.port, flush=True)
sys.stdin.read()
server.stop()
"""


def _cap_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_CAP, ADDRESS_SPACE_CAP))


def _peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


@pytest.fixture
def capped_server() -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVE],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=_cap_address_space,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield process, f"http://127.0.0.1:{port}/v1"
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_the_worst_images_at_once_stay_under_1_gb(
    capped_server: tuple[subprocess.Popen[str], str],
) -> None:
    process, base_url = capped_server
    worst = hostile.server_worst_inputs()
    headers = {"authorization": "Bearer sk-local-worst-inputs-0123456789"}

    def send(index: int) -> tuple[str, int, str | None]:
        name, data, _ = worst[index % len(worst)]
        response = httpx2.post(
            f"{base_url}/chat/completions",
            content=_body(_image(data)),
            headers={**headers, "content-type": "application/json"},
            timeout=TIME_BOUND,
        )
        return name, response.status_code, response.json().get("error", {}).get("code")

    began = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(send, range(16)))
    took = time.perf_counter() - began
    peak = _peak_rss(process.pid)
    print(f"16 worst images: {took:.2f}s, server peak RSS {peak / 2**20:.0f} MiB")
    expected = {name: code for name, _, code in worst}
    assert [(name, status, code) for name, status, code in answers] == [
        (name, 200 if expected[name] is None else 400, expected[name]) for name, _, _ in answers
    ]
    assert peak < MEMORY_BOUND, f"the server's peak RSS was {peak / 2**20:.0f} MiB"
    assert took < TIME_BOUND
