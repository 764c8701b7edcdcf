"""The describe_image input policy: paths, URLs, addresses and downloads, with no network."""

from __future__ import annotations

import base64
import ipaddress
import re
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx2
import pytest
from PIL import Image

from langchain_afarensis_vision._sources import urls as _safety
from langchain_afarensis_vision._sources.urls import ImagePolicy, ImageRefused, UrlPolicy
from langchain_afarensis_vision.errors import InvalidImageError
from tests import conftest
from tests.unit_tests.conftest import dirs

PUBLIC_IP = "93.184.216.34"
PNG_SIZE = (64, 48)

# -- input kinds and data: URLs ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "kind"),
    [
        ("chart.png", "path"),
        ("C:\\images\\chart.png", "path"),
        ("/abs/chart.png", "path"),
        ("https://example.com/a.png", "url"),
        ("HTTP://example.com/a.png", "url"),
        ("data:image/png;base64,AAAA", "data"),
        ("DATA:image/png;base64,AAAA", "data"),
    ],
)
def test_input_kind(image: str, kind: str) -> None:
    assert _safety.input_kind(image) == kind


@pytest.mark.parametrize(
    "image",
    [
        "file:///etc/passwd",
        "FILE:///etc/passwd",
        "ftp://example.com/a.png",
        "gopher://example.com:70/_GET",
        "javascript:alert(1)",
        "jar:http://example.com/a.jar!/a.png",
        "blob:https://example.com/123",
    ],
)
def test_other_schemes_refused(image: str) -> None:
    with pytest.raises(ImageRefused, match="URLs are not accepted"):
        _safety.input_kind(image)


def png_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", PNG_SIZE, "red").save(buffer, "PNG")
    return buffer.getvalue()


def test_data_url_decoded_and_capped() -> None:
    data = png_bytes()
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    assert _safety.decode_inline(url) == data
    with pytest.raises(ImageRefused, match="holds more than 100 bytes"):
        _safety.decode_inline(url + "A" * 2000, max_bytes=100)  # refused before decoding
    with pytest.raises(ImageRefused, match=f"holds {len(data):,} bytes"):
        _safety.decode_inline(url, max_bytes=len(data) - 1)
    with pytest.raises(InvalidImageError, match="not valid base64"):
        _safety.decode_inline("data:image/png;base64,@@@")


# -- addresses --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",
        "127.255.255.254",
        "10.0.0.1",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "::127.0.0.1",
        "2002:7f00:1::1",
        "64:ff9b::a9fe:a9fe",
        "2001:db8::1",
    ],
)
def test_non_public_addresses(ip: str) -> None:
    assert not _safety.is_public(ipaddress.ip_address(ip))


@pytest.mark.parametrize("ip", ["8.8.8.8", PUBLIC_IP, "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses(ip: str) -> None:
    assert _safety.is_public(ipaddress.ip_address(ip))


@pytest.mark.parametrize(
    ("host", "ip"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("[::1]", "::1"),
        ("::ffff:7f00:1", "::ffff:127.0.0.1"),
        ("example.com", None),
        ("cafe.be", None),
    ],
)
def test_parse_ip_spellings(host: str, ip: str | None) -> None:
    parsed = _safety.parse_ip(host)
    assert parsed == (ipaddress.ip_address(ip) if ip else None)


# -- URLs passed through to the API ------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/a.png", "127.0.0.1 is not public"),
        ("http://2130706433/a.png", "127.0.0.1 is not public"),
        ("http://0x7f000001/a.png", "127.0.0.1 is not public"),
        ("http://127.1/a.png", "127.0.0.1 is not public"),
        ("http://10.1.2.3/a.png", "not public"),
        ("http://172.16.0.1/a.png", "not public"),
        ("http://192.168.0.1/a.png", "not public"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is not public"),
        ("http://[::1]/a.png", "::1 is not public"),
        ("http://[fe80::1]/a.png", "not public"),
        ("http://[::ffff:127.0.0.1]/a.png", "not public"),
        ("http://0.0.0.0:8000/a.png", "not public"),
        ("http://localhost:8080/a.png", "not public"),
        ("http://api.localhost/a.png", "not public"),
        ("http://user:secret@example.com/a.png", "user name or password"),
        ("https://example.com@127.0.0.1/a.png", "user name or password"),
        ("http:///a.png", "no valid host"),
        ("http://exa mple.com/a.png", "no valid host"),
        ("http://[::1/a.png", "malformed"),
    ],
)
def test_passthrough_refused(url: str, reason: str) -> None:
    with pytest.raises(ImageRefused, match=re.escape(reason)):
        _safety.check_passthrough_url(url, UrlPolicy())


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/cat.png",
        "https://example.com/cat.png?size=large&x=%20y#frag",
        f"http://{PUBLIC_IP}/cat.png",
        "https://例え.jp/猫.png",
    ],
)
def test_passthrough_accepted_untouched(url: str) -> None:
    assert _safety.check_passthrough_url(url, UrlPolicy()) == url


@pytest.mark.parametrize(
    ("allow", "url", "ok"),
    [
        (True, "http://127.0.0.1:8000/a.png", True),
        (["127.0.0.0/8"], "http://127.0.0.1:8000/a.png", True),
        (["127.0.0.0/8"], "http://10.0.0.1/a.png", False),
        (["10.0.0.5"], "http://10.0.0.5/a.png", True),
        (["localhost"], "http://localhost/a.png", True),
        (["LocalHost"], "http://LOCALHOST/a.png", True),
        (["localhost"], "http://127.0.0.1/a.png", False),
        (["fd00::/8"], "http://[fd00::1]/a.png", True),
    ],
)
def test_private_allow_list(allow: bool | list[str], url: str, ok: bool) -> None:
    policy = UrlPolicy(allow_private=allow)
    if ok:
        assert _safety.check_passthrough_url(url, policy) == url
    else:
        with pytest.raises(ImageRefused, match="not public"):
            _safety.check_passthrough_url(url, policy)


# -- name resolution ------------------------------------------------------------------------


def fake_dns(table: dict[str, Sequence[str]]) -> Callable[..., list[tuple[Any, ...]]]:
    """A getaddrinfo that answers from ``table`` (and fails for anything else)."""

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in ip else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (ip, port),
            )
            for ip in table[host]
        ]

    return getaddrinfo


def no_dns(*args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
    raise AssertionError("IP literals must not be looked up")


DNS = fake_dns(
    {
        "images.example.com": [PUBLIC_IP],
        "cdn.example.com": ["93.184.216.35", "2606:2800:220:1::1"],
        "internal.example.com": ["10.0.0.5"],
        "metadata.example.com": ["169.254.169.254"],
        "mixed.example.com": [PUBLIC_IP, "127.0.0.1"],
        "v6loop.example.com": ["::1"],
        "mapped.example.com": ["::ffff:192.168.1.1"],
        "scoped.example.com": ["fe80::1%eth0"],
        "empty.example.com": [],
    }
)


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("internal.example.com", "10.0.0.5 (which 'internal.example.com' resolves to)"),
        ("metadata.example.com", "169.254.169.254 (which"),
        ("mixed.example.com", "127.0.0.1 (which"),
        ("v6loop.example.com", "::1 (which"),
        ("mapped.example.com", "(which 'mapped.example.com' resolves to)"),
        ("scoped.example.com", "fe80::1 (which"),
        ("unknown.example.com", "cannot be resolved"),
        ("empty.example.com", "has no address"),
    ],
)
def test_resolved_addresses_refused(host: str, reason: str) -> None:
    with pytest.raises(ImageRefused, match=re.escape(reason)):
        _safety.resolve_host(host, 443, UrlPolicy(getaddrinfo=DNS))


def test_resolution_picks_the_first_checked_address() -> None:
    address = _safety.resolve_host("cdn.example.com", 443, UrlPolicy(getaddrinfo=DNS))
    assert address == ipaddress.ip_address("93.184.216.35")


def test_literals_are_not_looked_up() -> None:
    policy = UrlPolicy(getaddrinfo=no_dns)
    with pytest.raises(ImageRefused, match=r"127\.0\.0\.1 is not public"):
        _safety.resolve_host("2130706433", 80, policy)
    assert _safety.resolve_host(PUBLIC_IP, 80, policy) == ipaddress.ip_address(PUBLIC_IP)


@pytest.mark.enable_socket  # as the tests with real servers run: socket.getaddrinfo is real
def test_the_suite_refuses_outside_lookups() -> None:
    """tests/conftest.py: no test reaches a real DNS server, whichever resolver it uses."""
    with pytest.raises(socket.gaierror, match=r"tests may not resolve 'images\.example\.com'"):
        socket.getaddrinfo("images.example.com", 443)
    with pytest.raises(ImageRefused, match="cannot be resolved"):  # the default resolver
        _safety.resolve_host("images.example.com", 443, UrlPolicy())
    assert socket.getaddrinfo("127.0.0.1", 80)
    assert socket.getaddrinfo("localhost", 80)
    assert conftest._LOOKUPS_REFUSED == ["images.example.com"] * 2
    conftest._LOOKUPS_REFUSED.clear()  # seen: this test is not to fail for them


# -- downloads --------------------------------------------------------------------------------


Route = httpx2.Response | Callable[[httpx2.Request], httpx2.Response]


class Web:
    """A fake web on httpx2.MockTransport, keyed by (Host header, path); records requests."""

    def __init__(self, routes: dict[tuple[str, str], Route]) -> None:
        self.routes = routes
        self.requests: list[httpx2.Request] = []

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        route = self.routes.get((request.headers["host"], request.url.path))
        if route is None:
            return httpx2.Response(404)
        return route(request) if callable(route) else route

    def policy(self, **kwargs: Any) -> UrlPolicy:
        client = httpx2.Client(transport=httpx2.MockTransport(self.handler))
        params: dict[str, Any] = {"download": True, "client": client, "getaddrinfo": DNS}
        return UrlPolicy(**(params | kwargs))


def redirect(location: str, status: int = 302) -> httpx2.Response:
    return httpx2.Response(status, headers={"location": location})


def test_download_connects_to_the_checked_address() -> None:
    data = png_bytes()
    web = Web({("images.example.com", "/a.png"): httpx2.Response(200, content=data)})
    assert _safety.download("https://images.example.com/a.png?x=1", web.policy()) == data
    (request,) = web.requests
    assert str(request.url) == f"https://{PUBLIC_IP}/a.png?x=1"
    assert request.headers["host"] == "images.example.com"
    assert request.headers["accept-encoding"] == "identity"
    assert request.extensions["sni_hostname"] == "images.example.com"
    assert 9.0 < request.extensions["timeout"]["read"] <= 10.0  # what is left of the deadline


def test_download_keeps_a_non_default_port_in_host() -> None:
    web = Web({("images.example.com:8443", "/a.png"): httpx2.Response(200, content=b"x")})
    assert _safety.download("https://images.example.com:8443/a.png", web.policy()) == b"x"
    assert str(web.requests[0].url) == f"https://{PUBLIC_IP}:8443/a.png"


def test_download_to_ipv6_address() -> None:
    web = Web({("cdn6.example.com", "/a.png"): httpx2.Response(200, content=b"x")})
    dns = fake_dns({"cdn6.example.com": ["2606:2800:220:1::1"]})
    assert _safety.download("http://cdn6.example.com/a.png", web.policy(getaddrinfo=dns)) == b"x"
    assert web.requests[0].url.host == "2606:2800:220:1::1"
    assert "sni_hostname" not in web.requests[0].extensions


def test_download_follows_checked_redirects() -> None:
    web = Web(
        {
            ("images.example.com", "/a.png"): redirect("https://cdn.example.com/b.png", 301),
            ("cdn.example.com", "/b.png"): redirect("/c.png", 307),
            ("cdn.example.com", "/c.png"): httpx2.Response(200, content=b"image"),
        }
    )
    assert _safety.download("https://images.example.com/a.png", web.policy()) == b"image"
    hosts = [request.headers["host"] for request in web.requests]
    assert hosts == ["images.example.com", "cdn.example.com", "cdn.example.com"]


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://internal.example.com/x.png", "10.0.0.5 (which 'internal.example.com'"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is not public"),
        ("http://2130706433/x.png", "127.0.0.1 is not public"),
        ("http://[::ffff:127.0.0.1]/x.png", "not public"),
        ("http://localhost.localdomain/x.png", "cannot be resolved"),
        ("file:///etc/passwd", "file: URLs are not accepted"),
        ("gopher://127.0.0.1:25/", "gopher: URLs are not accepted"),
    ],
)
def test_redirect_chain_ending_on_a_refused_hop(location: str, reason: str) -> None:
    web = Web(
        {
            ("images.example.com", "/a.png"): redirect("https://cdn.example.com/b.png"),
            ("cdn.example.com", "/b.png"): redirect(location),
        }
    )
    with pytest.raises(ImageRefused, match=re.escape(reason)):
        _safety.download("https://images.example.com/a.png", web.policy())
    assert len(web.requests) == 2  # the refused hop was never requested


def test_redirect_loop_is_cut() -> None:
    web = Web({("images.example.com", "/a.png"): redirect("/a.png")})
    with pytest.raises(ImageRefused, match="redirects more than 5 times"):
        _safety.download("https://images.example.com/a.png", web.policy())
    assert len(web.requests) == 6


def test_declared_oversize_is_refused_unread() -> None:
    def huge() -> Iterator[bytes]:
        raise AssertionError("the body must not be read")
        yield b""  # pragma: no cover

    response = httpx2.Response(200, headers={"content-length": "99999"}, content=huge())
    web = Web({("images.example.com", "/a.png"): response})
    with pytest.raises(ImageRefused, match="99,999 bytes; at most 1,000"):
        _safety.download("https://images.example.com/a.png", web.policy(max_bytes=1000))


def endless(sent: list[int]) -> Iterator[bytes]:
    """400-byte chunks without end, each noted in ``sent`` as it goes."""
    for number in range(10_000):
        sent.append(number)
        yield b"x" * 400


def test_streamed_oversize_stops_reading() -> None:
    sent: list[int] = []
    web = Web({("images.example.com", "/a.png"): httpx2.Response(200, content=endless(sent))})
    with pytest.raises(ImageRefused, match="larger than 1,000 bytes"):
        _safety.download("https://images.example.com/a.png", web.policy(max_bytes=1000))
    assert len(sent) == 3


def test_prefix_is_cut_not_refused() -> None:
    sent: list[int] = []
    headers = {"content-length": "4000000"}  # more than max_bytes: not refused for a prefix
    response = httpx2.Response(200, headers=headers, content=endless(sent))
    web = Web({("images.example.com", "/a.png"): response})
    policy = web.policy(max_bytes=1000)
    assert _safety.download("https://images.example.com/a.png", policy, prefix=500) == b"x" * 500
    assert len(sent) == 2  # reading stopped at the prefix


def test_timeout_is_refused() -> None:
    def slow(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("timed out", request=request)

    web = Web({("images.example.com", "/a.png"): slow})
    with pytest.raises(ImageRefused, match="timed out after 2 s"):
        _safety.download("https://images.example.com/a.png", web.policy(timeout=2))


def test_slow_drip_hits_the_overall_deadline() -> None:
    def drip() -> Iterator[bytes]:
        for _ in range(100):
            time.sleep(0.02)
            yield b"x"

    web = Web({("images.example.com", "/a.png"): httpx2.Response(200, content=drip())})
    with pytest.raises(ImageRefused, match="took too long"):
        _safety.download("https://images.example.com/a.png", web.policy(timeout=0.1))


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (httpx2.Response(404), "answered HTTP 404"),
        (httpx2.Response(500), "answered HTTP 500"),
        (httpx2.Response(302), "answered HTTP 302"),  # a redirect without Location
        (
            httpx2.Response(200, headers={"content-encoding": "gzip"}, content=b"\x1f\x8b"),
            "compressed body",
        ),
    ],
)
def test_bad_answers_refused(response: httpx2.Response, reason: str) -> None:
    web = Web({("images.example.com", "/a.png"): response})
    with pytest.raises(ImageRefused, match=reason):
        _safety.download("https://images.example.com/a.png", web.policy())


def test_connection_error_refused() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    web = Web({("images.example.com", "/a.png"): refuse})
    with pytest.raises(ImageRefused, match=r"cannot be downloaded \(ConnectError\)"):
        _safety.download("https://images.example.com/a.png", web.policy())


def test_private_download_when_allowed() -> None:
    web = Web({("127.0.0.1:8000", "/a.png"): httpx2.Response(200, content=b"local")})
    with pytest.raises(ImageRefused, match="not public"):
        _safety.download("http://127.0.0.1:8000/a.png", web.policy())
    assert web.requests == []
    policy = web.policy(allow_private=True, getaddrinfo=no_dns)
    assert _safety.download("http://127.0.0.1:8000/a.png", policy) == b"local"


def test_https_to_an_ip_literal_sets_no_sni() -> None:
    web = Web({(PUBLIC_IP, "/a.png"): httpx2.Response(200, content=b"x")})
    assert _safety.download(f"https://{PUBLIC_IP}/a.png", web.policy(getaddrinfo=no_dns)) == b"x"
    assert "sni_hostname" not in web.requests[0].extensions


# -- everything together ----------------------------------------------------------------------


def test_load_image_dispatch(tree: Path) -> None:
    data = png_bytes()
    web = Web({("images.example.com", "/a.png"): httpx2.Response(200, content=data)})
    policy = ImagePolicy(dirs(tree), urls=web.policy())
    passthrough = ImagePolicy(dirs(tree))
    data_url = "data:image/png;base64," + base64.b64encode(data).decode()

    assert _safety.load_image(data_url, policy) == _safety.LoadedImage("data: URL", data)
    assert _safety.load_image("https://images.example.com/a.png", passthrough).data is None
    downloaded = _safety.load_image("https://images.example.com/a.png", policy)
    assert downloaded == _safety.LoadedImage("https://images.example.com/a.png", data)
    assert _safety.load_image("chart.png", policy).source.endswith("chart.png")
