"""A server bound beyond loopback fetches image URLs as the ``describe_image`` tool does.

Public addresses only (each redirect checked, the connection pinned to the checked address),
unless ``allow_private_urls``; its refusals say nothing of what it found. Names are resolved by
an injected ``getaddrinfo`` and pages served by an ``httpx2.MockTransport``: nothing here
resolves a real name or leaves the machine, and no server is bound beyond loopback.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import httpx2
import pytest

from langchain_afarensis_vision import cli
from langchain_afarensis_vision._api.contract import MAX_IMAGE_BYTES
from langchain_afarensis_vision._sources.urls import UrlPolicy
from langchain_afarensis_vision.server import LocalAfarensisServer, _cli
from langchain_afarensis_vision.server._cli import exposure_warning, serve_main
from tests.integration_tests.conftest import (
    assert_error,
    authed,
    body,
    image_bytes,
    image_part,
    ok_json,
    user,
)
from tests.unit_tests._sources.test_urls import Web, fake_dns, redirect

pytestmark = pytest.mark.enable_socket

PNG = image_bytes((30, 20), (200, 0, 0))
PUBLIC_IP = "93.184.216.34"
DNS = fake_dns(
    {
        "images.example.com": [PUBLIC_IP],
        "intranet.example.com": ["10.0.0.7"],
        "sneaky.example.com": [PUBLIC_IP, "127.0.0.1"],
    }
)
ROUTES = {
    ("images.example.com", "/a.png"): httpx2.Response(200, content=PNG),
    ("images.example.com", "/to-metadata"): redirect("http://169.254.169.254/latest/meta-data"),
    ("images.example.com", "/to-intranet"): redirect("http://intranet.example.com/secret.png"),
    ("images.example.com", "/gone.png"): httpx2.Response(404, text="no such image"),
    ("images.example.com", "/big.png"): httpx2.Response(
        200, content=b"\x89PNG" + bytes(MAX_IMAGE_BYTES)
    ),
    ("intranet.example.com", "/secret.png"): httpx2.Response(200, content=PNG),
}


@pytest.fixture
def web() -> Web:
    return Web(dict(ROUTES))


@pytest.fixture
def exposed(web: Web) -> Iterator[httpx2.Client]:
    """A server whose downloads follow the policy it gets when bound beyond loopback."""
    policy = web.policy(getaddrinfo=DNS)
    with LocalAfarensisServer(ocr=False, url_policy=policy) as server, authed(server) as client:
        yield client


def _ask(client: httpx2.Client, url: str) -> httpx2.Response:
    return client.post("/chat/completions", json=body(user("What is it?", image_part(url))))


def test_a_public_image_is_fetched_from_the_checked_address(
    exposed: httpx2.Client, web: Web
) -> None:
    answer = ok_json(_ask(exposed, "https://images.example.com/a.png"))
    assert "a PNG of 30 x 20 pixels" in answer["choices"][0]["message"]["content"]
    (request,) = web.requests
    assert (request.url.host, request.headers["host"]) == (PUBLIC_IP, "images.example.com")


@pytest.mark.parametrize(
    "url",
    [
        "http://intranet.example.com/secret.png",
        "http://sneaky.example.com/a.png",
        "http://127.0.0.1:8000/admin.png",
        "http://[::1]/a.png",
        "http://169.254.169.254/latest/meta-data",
        "https://images.example.com/to-metadata",
        "https://images.example.com/to-intranet",
        "https://images.example.com/gone.png",
        "http://no-such-host.example.com/a.png",
    ],
)
def test_what_is_refused_says_only_refused_or_unreachable(
    exposed: httpx2.Client, web: Web, url: str
) -> None:
    data = assert_error(
        _ask(exposed, url), 400, "image_url_unreachable", "messages[0].content[1].image_url"
    )
    message = data["error"]["message"]
    assert message.endswith("is refused or unreachable."), message
    for detail in ("10.0.0.7", "127.0.0.1 (", "169.254", "public", "resolve", "404", "HTTP"):
        assert detail not in message.replace(url, "")
    assert all(request.headers["host"] == "images.example.com" for request in web.requests), (
        "a refused address was connected to"
    )


def test_more_than_20_mb_is_still_image_too_large(exposed: httpx2.Client) -> None:
    assert_error(_ask(exposed, "https://images.example.com/big.png"), 400, "image_too_large")


# -- when the policy applies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "allow", "checked"),
    [
        ("127.0.0.1", False, False),
        ("localhost", False, False),
        ("::1", False, False),
        ("0.0.0.0", False, True),  # never started here
        ("192.168.1.20", False, True),
        ("myhost.lan", False, True),
        ("0.0.0.0", True, False),
    ],
)
def test_beyond_loopback_the_tool_policy_applies(host: str, allow: bool, checked: bool) -> None:
    server = LocalAfarensisServer(host=host, allow_private_urls=allow, fetch_timeout=3.0)
    policy = server.settings.url_policy
    if not checked:
        assert policy is None
        return
    assert isinstance(policy, UrlPolicy)
    assert (policy.download, policy.allow_private, policy.timeout) == (True, False, 3.0)


def test_the_warning_at_start() -> None:
    assert exposure_warning("127.0.0.1", False) is None
    closed = exposure_warning("0.0.0.0", False)
    assert closed is not None
    assert "beyond loopback" in closed
    assert "only from public addresses" in closed
    opened = exposure_warning("0.0.0.0", True)
    assert opened is not None
    assert "any URL" in opened
    assert "internal" in opened


class _Unstarted:
    """Stands in for LocalAfarensisServer: records what it was given, binds nothing."""

    made: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **options: Any) -> None:
        self.made.append(options)
        self.base_url, self.api_key, self.running = "http://0.0.0.0:1/v1", "sk-x", False

    def start(self) -> None:
        return

    def stop(self) -> None:
        return


def test_serve_warns_beyond_loopback_and_passes_the_flag(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_cli, "LocalAfarensisServer", _Unstarted)
    stop = threading.Event()
    stop.set()
    assert serve_main("0.0.0.0", 0, stop=stop) == 0
    assert "beyond loopback" in capsys.readouterr().err
    assert serve_main("0.0.0.0", 0, allow_private_urls=True, stop=stop) == 0
    assert "any URL" in capsys.readouterr().err
    assert [made["allow_private_urls"] for made in _Unstarted.made[-2:]] == [False, True]

    called: dict[str, Any] = {}

    def fake_serve_main(*args: Any, **kwargs: Any) -> int:
        called.update(args=args, kwargs=kwargs)
        return 0

    monkeypatch.setattr("langchain_afarensis_vision.server.serve_main", fake_serve_main)
    assert cli.main(["serve", "--host", "0.0.0.0", "--allow-private-urls"]) == 0
    assert called["args"][0] == "0.0.0.0"
    assert called["kwargs"]["allow_private_urls"] is True
    assert called["kwargs"]["log_level"] == "info"
