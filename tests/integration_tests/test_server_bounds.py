"""The server's own bounds: caps per request, checks before costly work, bounded downloads,
bodies read within a shared memory budget and a deadline, JSON shapes checked before the schema.

Caps (50 images, 10,000 content parts, JSON depth) are 400 ``invalid_value`` answers naming the
cap and the field, given before anything is downloaded or decoded; so is the context window.
Downloads run a few at once, reserve the bytes they may read, and share one deadline with their
redirects; each image's decoded size is reserved around its decode.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx2
import pytest

from langchain_afarensis_vision._sources.budget import MemoryBudget
from langchain_afarensis_vision.server import LocalAfarensisServer, _analysis, _images, _reading
from langchain_afarensis_vision.server import app as server_app
from langchain_afarensis_vision.server._request import read_body
from langchain_afarensis_vision.server.settings import (
    BODY_COPIES,
    HEAVY_VALUES,
    MAX_CONTENT_PARTS,
    MAX_DOWNLOADS,
    MAX_IMAGES,
    MAX_JSON_DEPTH,
    MAX_JSON_KEYS,
    WORKER_THREADS,
)
from tests._support import serving
from tests.integration_tests.conftest import (
    assert_error,
    authed,
    body,
    data_url,
    image_bytes,
    image_part,
    ok_json,
    user,
)

pytestmark = pytest.mark.enable_socket

PNG = image_bytes((40, 30), (0, 128, 255))


# -- a host that counts, delays and redirects ----------------------------------------------------


@dataclass
class SlowHost:
    """Serves ``/img/<anything>`` (after ``delay``), ``/hop/<n>`` (redirects n times, each after
    ``hop_delay``) and ``/slow-body/<anything>`` (headers, then the body ``delay`` later)."""

    image: bytes = PNG
    delay: float = 0.0
    hop_delay: float = 0.0
    base_url: str = ""
    hits: int = 0
    active: int = 0
    most: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def enter(self) -> None:
        with self.lock:
            self.hits += 1
            self.active += 1
            self.most = max(self.most, self.active)

    def leave(self) -> None:
        with self.lock:
            self.active -= 1


class _Handler(BaseHTTPRequestHandler):
    host: SlowHost

    def do_GET(self) -> None:
        host = self.host
        host.enter()
        try:
            if self.path.startswith("/hop/") and (left := int(self.path[5:])) > 0:
                time.sleep(host.hop_delay)
                self.send_response(302)
                self.send_header("location", f"/hop/{left - 1}")
                self.send_header("content-length", "0")
                self.end_headers()
                return
            if not self.path.startswith("/slow-body/"):
                time.sleep(host.delay)
            self.send_response(200)
            self.send_header("content-type", "image/png")
            self.send_header("content-length", str(len(host.image)))
            self.end_headers()
            self.wfile.flush()
            if self.path.startswith("/slow-body/"):
                time.sleep(host.delay)
            self.wfile.write(host.image)
        finally:
            host.leave()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def slow_host() -> Iterator[SlowHost]:
    host = SlowHost()
    with serving(type("Handler", (_Handler,), {"host": host})) as base_url:
        host.base_url = base_url
        yield host


@pytest.fixture
def server() -> Iterator[LocalAfarensisServer]:
    """A server of this module's own: its budgets and caches are not shared with other tests."""
    with LocalAfarensisServer(ocr=False) as running:
        yield running


@pytest.fixture
def client(server: LocalAfarensisServer) -> Iterator[httpx2.Client]:
    with authed(server) as c:
        yield c


# -- caps ----------------------------------------------------------------------------------------


def test_more_images_than_the_cap_is_a_400_naming_the_cap(client: httpx2.Client) -> None:
    images = [image_part(data_url(PNG))] * (MAX_IMAGES + 1)
    data = assert_error(
        client.post("/chat/completions", json=body(user("Compare", *images))),
        400,
        "invalid_value",
        f"messages[0].content[{MAX_IMAGES + 1}]",
    )
    assert f"at most {MAX_IMAGES}" in data["error"]["message"]
    ok_json(client.post("/chat/completions", json=body(user(*images[:MAX_IMAGES]))))


def test_more_content_parts_than_the_cap_is_a_400_naming_the_cap(client: httpx2.Client) -> None:
    half = ["hi"] * (MAX_CONTENT_PARTS // 2)
    response = client.post("/chat/completions", json=body(user(*half), user(*half, "one more")))
    data = assert_error(response, 400, "invalid_value", "messages[1].content")
    assert f"at most {MAX_CONTENT_PARTS:,}" in data["error"]["message"]
    ok_json(client.post("/chat/completions", json=body(user(*half), user(*half))))


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 500, 100_000])
@pytest.mark.parametrize("where", ["metadata", "tool-parameters", "body"])
def test_deep_nesting_is_a_400_not_a_500(client: httpx2.Client, depth: int, where: str) -> None:
    nested = "[" * depth + "]" * depth
    head = '{"model": "gpt-4-vision-preview", "messages": [{"role": "user", "content": "hi"}]'
    raw = {
        "metadata": f'{head}, "metadata": {nested}}}',
        "tool-parameters": (
            f'{head}, "tools": [{{"type": "function", "function": {{"name": "f", '
            f'"parameters": {{"x": {nested}}}}}}}]}}'
        ),
        "body": nested,
    }[where]
    response = client.post(
        "/chat/completions", content=raw.encode(), headers={"content-type": "application/json"}
    )
    data = assert_error(response, 400, "invalid_value", None)
    assert f"nested more than {MAX_JSON_DEPTH} levels" in data["error"]["message"]


def test_caps_hold_before_any_download(client: httpx2.Client, slow_host: SlowHost) -> None:
    images = [image_part(slow_host.url(f"/img/{n}.png")) for n in range(MAX_IMAGES + 1)]
    assert_error(client.post("/chat/completions", json=body(user(*images))), 400, "invalid_value")
    assert slow_host.hits == 0


def test_the_context_window_is_checked_before_any_download(
    client: httpx2.Client, slow_host: SlowHost
) -> None:
    long_text = " x" * 127_500  # 127,500 tokens: with max_tokens, fits alone; not with 3 images
    images = [image_part(slow_host.url(f"/img/{n}.png"), "low") for n in range(3)]
    data = assert_error(
        client.post("/chat/completions", json=body(user(long_text, *images))),
        400,
        "invalid_value",
        "messages",
    )
    assert "you requested at least" in data["error"]["message"]
    assert slow_host.hits == 0


# -- downloads -----------------------------------------------------------------------------------


def test_downloads_run_a_few_at_once(client: httpx2.Client, slow_host: SlowHost) -> None:
    slow_host.delay = 0.2
    images = [image_part(slow_host.url(f"/img/{n}.png")) for n in range(3 * MAX_DOWNLOADS)]
    answer = ok_json(client.post("/chat/completions", json=body(user("Compare", *images))))
    assert f"the {3 * MAX_DOWNLOADS} images you sent" in answer["choices"][0]["message"]["content"]
    assert slow_host.hits == 3 * MAX_DOWNLOADS
    assert 1 < slow_host.most <= MAX_DOWNLOADS


def test_a_download_reserves_its_declared_bytes_while_it_runs(
    server: LocalAfarensisServer, client: httpx2.Client, slow_host: SlowHost
) -> None:
    slow_host.delay = 0.5
    budget: MemoryBudget = server.app.state.afarensis.work.downloads
    seen: list[int] = []
    sender = threading.Thread(
        target=lambda: client.post(
            "/chat/completions", json=body(user(image_part(slow_host.url("/slow-body/a.png"))))
        )
    )
    sender.start()
    while sender.is_alive():
        seen.append(budget.in_use)
        time.sleep(0.01)
    assert max(seen) == len(PNG)
    assert budget.in_use == 0


def test_one_deadline_covers_a_download_and_its_redirects(
    start_server: Any, slow_host: SlowHost
) -> None:
    slow_host.hop_delay = 0.3
    server = start_server(ocr=False, fetch_timeout=1.0)
    with authed(server) as client:
        ok_json(
            client.post("/chat/completions", json=body(user(image_part(slow_host.url("/hop/2")))))
        )
        began = time.monotonic()
        response = client.post(
            "/chat/completions", json=body(user(image_part(slow_host.url("/hop/8"))))
        )
    data = assert_error(response, 400, "image_url_unreachable")
    assert "Timed out after 1s" in data["error"]["message"]
    assert time.monotonic() - began < 2.0  # 8 hops take 2.4 s: the deadline cut them at 1 s


def test_the_bytes_downloaded_for_one_request_are_capped(
    client: httpx2.Client, slow_host: SlowHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_reading, "MAX_REQUEST_IMAGE_BYTES", 2 * len(PNG) + 1)
    images = [image_part(slow_host.url(f"/img/{n}.png")) for n in range(3)]
    ok_json(client.post("/chat/completions", json=body(user(*images[:2]))))
    data = assert_error(
        client.post("/chat/completions", json=body(user(*images))), 400, "image_too_large"
    )
    assert f"more than {2 * len(PNG) + 1:,} bytes in all" in data["error"]["message"]


# -- memory --------------------------------------------------------------------------------------


def test_each_image_holds_its_decoded_size_while_it_is_decoded(
    server: LocalAfarensisServer, client: httpx2.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    budget: MemoryBudget = server.app.state.afarensis.work.images
    held: dict[str, int] = {}

    def watch(name: str, real: Any) -> Any:
        def watched(*args: Any) -> Any:
            held[name] = budget.in_use
            return real(*args)

        return watched

    monkeypatch.setattr(_images, "decode_image", watch("check", _images.decode_image))
    monkeypatch.setattr(_analysis, "analyse", watch("pixels", _analysis.analyse))
    fresh = image_bytes((300, 200), (1, 2, 3))  # an RGB PNG this server has not seen: 240,000 B
    ok_json(client.post("/chat/completions", json=body(user(image_part(data_url(fresh))))))
    decoded = 200 * (300 * 4 + 8)  # rows of 4-byte pixels, and a pointer a row
    assert held == {"check": decoded, "pixels": decoded}  # RGB is shrunk with no copy
    assert budget.in_use == 0


# -- bodies on the wire --------------------------------------------------------------------------


def _connect(server: LocalAfarensisServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def _head(server: LocalAfarensisServer, framing: str) -> bytes:
    return (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: local\r\n"
        f"authorization: Bearer {server.api_key}\r\ncontent-type: application/json\r\n"
        f"{framing}\r\n\r\n"
    ).encode()


def _until_closed(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection (a 10 s timeout proves no hang)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def _padded(length: int) -> bytes:
    """A valid request body of exactly ``length`` bytes."""
    raw = json.dumps(body(user("Hello"), max_tokens=5)).encode()
    return raw + b" " * (length - len(raw))


def test_a_client_slow_to_send_its_headers_is_disconnected(start_server: Any) -> None:
    server = start_server(ocr=False, read_timeout=0.5)
    with _connect(server) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: local\r\nx-slow: ")
        assert _until_closed(sock) == b""  # no request arrived: nothing to answer
    with authed(server) as client:  # the server still serves
        ok_json(client.post("/chat/completions", json=body(user("Hello"))))


def test_a_client_slow_to_send_its_body_gets_a_400_and_is_disconnected(
    start_server: Any,
) -> None:
    server = start_server(ocr=False, read_timeout=0.5)
    with _connect(server) as sock:
        sock.sendall(_head(server, "content-length: 1000") + b'{"model": ')
        answer = _until_closed(sock)
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"connection: close" in head.lower()
    assert b"did not arrive within 0.5 s (10 bytes came)" in payload
    assert server.app.state.afarensis.work.bodies.in_use == 0


@pytest.mark.parametrize("framing", ["chunked", "declared"])
def test_a_body_over_the_cap_is_refused_and_the_connection_closed(
    start_server: Any, framing: str
) -> None:
    server = start_server(ocr=False, max_body_bytes=4096)
    with _connect(server) as sock:
        if framing == "chunked":
            sock.sendall(_head(server, "transfer-encoding: chunked"))
            sock.sendall(b"%x\r\n%s\r\n" % (8192, b" " * 8192))
        else:
            sock.sendall(_head(server, f"content-length: {2**31}") + b" " * 8192)
        answer = _until_closed(sock)  # before, the server read (and dropped) the rest for ever
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"connection: close" in head.lower()
    assert json.loads(payload)["error"]["message"] == (
        "The request body is larger than 4,096 bytes."
    )


def test_an_answer_before_a_declared_body_keeps_the_connection(
    server: LocalAfarensisServer,
) -> None:
    raw = json.dumps(body(user("Hello"))).encode()
    with httpx2.Client(base_url=server.base_url) as client:  # no key: a 401 before the body
        refused = client.post("/chat/completions", content=raw)
        assert refused.status_code == 401
        assert "connection" not in refused.headers  # the rest is read and dropped: bounded


def test_request_bodies_share_one_memory_budget_and_wait_for_it(start_server: Any) -> None:
    length = 2000
    server = start_server(ocr=False, body_memory=BODY_COPIES * length, body_wait=60)
    budget: MemoryBudget = server.app.state.afarensis.work.bodies
    with _connect(server) as first, authed(server) as client:
        first.sendall(_head(server, f"content-length: {length}") + _padded(length)[:10])
        while budget.in_use < BODY_COPIES * length:  # the first body holds the whole budget
            time.sleep(0.01)
        answers: list[httpx2.Response] = []
        second = threading.Thread(
            target=lambda: answers.append(client.post("/chat/completions", content=_padded(length)))
        )
        second.start()
        time.sleep(0.3)
        assert second.is_alive()  # it waits, its body unread
        assert budget.in_use == BODY_COPIES * length
        first.sendall(_padded(length)[10:])
        assert b" 200 OK" in first.recv(65536).split(b"\r\n")[0]
        second.join(30)
    ok_json(answers[0])
    assert budget.in_use == 0


def test_a_request_that_waits_too_long_for_body_memory_gets_a_503(start_server: Any) -> None:
    length = 2000
    server = start_server(ocr=False, body_memory=BODY_COPIES * length, body_wait=0.2)
    with _connect(server) as first, authed(server) as client:
        first.sendall(_head(server, f"content-length: {length}") + _padded(length)[:10])
        while server.app.state.afarensis.work.bodies.in_use == 0:
            time.sleep(0.01)
        busy = client.post("/chat/completions", content=_padded(length))
        first.sendall(_padded(length)[10:])
        assert b" 200 OK" in first.recv(65536).split(b"\r\n")[0]
    data = assert_error(busy, 503, None, None)
    assert data["error"]["type"] == "server_error"
    assert busy.headers["retry-after"] == "1"


# -- JSON the schema never walks -----------------------------------------------------------------


@pytest.mark.parametrize("where", ["metadata", "tool-parameters", "logit_bias"])
def test_an_object_with_too_many_keys_is_a_400_before_the_schema(
    client: httpx2.Client, where: str
) -> None:
    wide = {f"k{i}": 0 for i in range(MAX_JSON_KEYS + 1)}
    extras: dict[str, dict[str, Any]] = {
        "metadata": {"metadata": wide},
        "tool-parameters": {
            "tools": [{"type": "function", "function": {"name": "f", "parameters": wide}}]
        },
        "logit_bias": {"logit_bias": {str(i): 0 for i in range(MAX_JSON_KEYS + 1)}},
    }
    extra = extras[where]
    data = assert_error(
        client.post("/chat/completions", json=body(user("Hello"), **extra)),
        400,
        "invalid_value",
        None,
    )
    assert f"holds more than {MAX_JSON_KEYS:,} keys" in data["error"]["message"]
    extra_at_cap = {"metadata": {f"k{i}": "v" for i in range(16)}}
    ok_json(client.post("/chat/completions", json=body(user("Hello"), **extra_at_cap)))


@pytest.mark.parametrize(
    ("text", "param"),
    [
        (r'"\ud800"', "messages[0].content"),
        (r'"a\udfffb"', "messages[0].content"),
        (r'[{"type": "text", "text": "\udbff"}]', "messages[0].content[0].text"),
    ],
)
def test_a_lone_surrogate_is_a_400_naming_the_field(
    client: httpx2.Client, text: str, param: str
) -> None:
    raw = (
        '{"model": "gpt-4-vision-preview", "max_tokens": 5, '
        f'"messages": [{{"role": "user", "content": {text}}}]}}'
    )
    data = assert_error(
        client.post("/chat/completions", content=raw.encode()), 400, "invalid_value", param
    )
    assert "lone UTF-16 surrogate" in data["error"]["message"]


def test_a_surrogate_pair_and_an_escaped_backslash_are_text(client: httpx2.Client) -> None:
    raw = (
        '{"model": "gpt-4-vision-preview", "max_tokens": 5, "metadata": {"\\udc00": "x"}, '
        '"messages": [{"role": "user", "content": "\\ud83d\\ude00 and \\\\ud800"}]}'
    )
    data = assert_error(
        client.post("/chat/completions", content=raw.encode()), 400, "invalid_value", "metadata"
    )
    assert "lone UTF-16 surrogate" in data["error"]["message"]
    fine = raw.replace('"metadata": {"\\udc00": "x"}, ', "")
    ok_json(client.post("/chat/completions", content=fine.encode()))


def test_bodies_of_many_values_wait_for_each_other_not_the_rest(
    server: LocalAfarensisServer, client: httpx2.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate, real = threading.Event(), read_body

    def held_when_heavy(raw: bytearray, *rest: Any) -> Any:
        if raw.count(b",") > HEAVY_VALUES:
            gate.wait(30)
        return real(raw, *rest)

    monkeypatch.setattr(server_app, "read_body", held_when_heavy)
    many = body(user(*["hi"] * (HEAVY_VALUES // 2)))
    senders = [
        threading.Thread(target=lambda: client.post("/chat/completions", json=many))
        for _ in range(WORKER_THREADS)
    ]
    for sender in senders:
        sender.start()
    with authed(server) as other:  # every worker thread would be held by now, but one lane is
        ok_json(other.post("/chat/completions", json=body(user("Hello")), timeout=10))
    gate.set()
    for sender in senders:
        sender.join(30)
