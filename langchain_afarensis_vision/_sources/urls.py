"""Which images ``describe_image`` may read or fetch: the URL policy and the one fetcher.

An agent's arguments come from a language model and are treated as hostile. Each rule is a
small function that raises :class:`ImageRefused` with a reason the agent can read:

- **Local files** only inside ``allowed_dirs`` (none by default): the rules are
  :mod:`._sources.paths`'.
- **URLs**: ``http(s)`` and ``data:`` only. By default an http(s) URL goes to the API as is
  (the API fetches it), refused only when its host is a non-public IP literal or
  ``localhost``. With ``download=True`` the tool fetches it itself: every address the host
  resolves to must be public (private, loopback, link-local, multicast, reserved, unspecified,
  shared and IPv6 forms embedding such an IPv4 are refused, in any spelling ``inet_aton``
  accepts, e.g. ``2130706433``), redirects are followed by hand (at most 5) and checked hop by
  hop, and the body is streamed under a size cap. One deadline (``timeout``) bounds the whole
  download: each hop's connect and reads, then the body's reads, get only what is left of it.

DNS rebinding: a download connects to the very address that was checked (the URL's host is
replaced by that IP, with ``Host`` and TLS SNI/certificate checks set to the original name), so
no second lookup can answer differently. Residual risks: a client passed in by the caller
(``client=``) is used as configured (its proxies may resolve names themselves), URLs passed
through to the API are fetched by the API, under its own rules, and name resolution
(``getaddrinfo``, which cannot be interrupted) is outside the download's deadline.

Token counting (``ChatAfarensis.get_num_tokens_from_messages(fetch_image_sizes=True)``) reads
the first bytes of image URLs through the same :func:`download`, under the same rules.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

import httpx2

from langchain_afarensis_vision._api.contract import (
    DATA_URL_SCHEME,
    FETCHED_URL_SCHEMES,
    MAX_IMAGE_BYTES,
    has_scheme,
    url_scheme,
)
from langchain_afarensis_vision._sources.paths import (
    ImageRefused,
    find_local_file,
    read_local_file,
    shown,
)
from langchain_afarensis_vision._sources.read import MAX_INPUT_BYTES, decode_data_url

__all__ = [
    "GetAddrInfo",
    "ImagePolicy",
    "ImageRefused",
    "LoadedImage",
    "UrlPolicy",
    "download",
    "load_image",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
GetAddrInfo: TypeAlias = Callable[..., Sequence[tuple[Any, ...]]]
"""The shape of :func:`socket.getaddrinfo` (injectable for tests)."""

MAX_REDIRECTS: Final = 5
_HOST = re.compile(r"[a-z0-9._-]+")  # an ASCII (IDNA-encoded) host name
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)


# -- what kind of input ----------------------------------------------------------------------


def input_kind(image: str) -> Literal["path", "url", "data"]:
    """Whether ``image`` names a local file, an http(s) URL or a ``data:`` URL."""
    if "\x00" in image:
        raise ImageRefused("the name contains a NUL byte")
    if not has_scheme(image):
        return "path"
    scheme = url_scheme(image)
    if scheme == DATA_URL_SCHEME:
        return "data"
    if scheme in FETCHED_URL_SCHEMES:
        return "url"
    msg = f"{shown(scheme, quoted=False)}: URLs are not accepted; give an https:// or http:// URL,"
    msg += " a data: URL or a file"
    raise ImageRefused(msg)


# -- data: URLs ------------------------------------------------------------------------------


def decode_inline(url: str, max_bytes: int = MAX_IMAGE_BYTES) -> bytes:
    """The bytes of a ``data:`` URL of at most ``max_bytes`` (checked before decoding too)."""
    if len(url) > max_bytes * 4 // 3 + 1024:
        raise ImageRefused(f"the data: URL holds more than {max_bytes:,} bytes")
    data = decode_data_url(url)
    if len(data) > max_bytes:
        raise ImageRefused(f"the data: URL holds {len(data):,} bytes; at most {max_bytes:,}")
    return data


# -- addresses -------------------------------------------------------------------------------


def parse_ip(host: str) -> IPAddress | None:
    """``host`` as an IP address, in any spelling the resolver takes (``0x7f000001``), or None."""
    host = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))  # 127.1, 2130706433, 0177.0.0.1
    except (OSError, ValueError):
        return None


def is_public(ip: IPAddress) -> bool:
    """Whether ``ip`` is a globally routable unicast address (and so is any IPv4 it embeds)."""
    if isinstance(ip, ipaddress.IPv6Address) and not all(map(is_public, _embedded_ipv4(ip))):
        return False
    special = ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
    special = special or ip.is_reserved or ip.is_unspecified or ip in _SHARED
    return ip.is_global and not special


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address may deliver to: mapped, 6to4, Teredo, NAT64, ..."""
    found = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _NAT64 or (int(ip) >> 32 == 0 and int(ip) > 1):  # NAT64, IPv4-compatible ::a.b.c.d
        found.append(low32)
    return [address for address in found if address is not None]


# -- URLs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UrlPolicy:
    """How http(s) image URLs are treated.

    ``allow_private`` is ``True`` (any address), ``False``, or an allow-list of host names
    and networks (``"127.0.0.1"``, ``"10.0.0.0/8"``, ``"images.internal"``).
    """

    download: bool = False
    allow_private: bool | Sequence[str] = False
    max_bytes: int = MAX_IMAGE_BYTES
    timeout: float = 10.0
    max_redirects: int = MAX_REDIRECTS
    client: httpx2.Client | None = field(default=None, repr=False)
    getaddrinfo: GetAddrInfo = field(default=socket.getaddrinfo, repr=False)

    def check_address(self, host: str, ip: IPAddress) -> None:
        """Refuse ``ip`` (an address of ``host``) unless it is public or allowed."""
        if is_public(ip) or self.allow_private is True:
            return
        allowed = () if self.allow_private is False else self.allow_private
        if host in map(str.lower, allowed) or any(_in_network(ip, e) for e in allowed):
            return
        where = "" if parse_ip(host) else f" (which {shown(host)} resolves to)"
        raise ImageRefused(f"the address {ip}{where} is not public (private, local or reserved)")


def _in_network(ip: IPAddress, entry: str) -> bool:
    try:
        return ip in ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False  # a host name


def parse_url(url: str) -> httpx2.URL:
    """``url`` parsed (the same parser that sends it), if it is a plain http(s) URL."""
    try:
        parsed = httpx2.URL(url)
    except (httpx2.InvalidURL, ValueError, TypeError):
        raise ImageRefused("the URL is malformed") from None
    if parsed.scheme not in FETCHED_URL_SCHEMES:
        scheme = shown(parsed.scheme, quoted=False)
        raise ImageRefused(f"{scheme}: URLs are not accepted; give an http(s) URL")
    if parsed.userinfo:
        raise ImageRefused("URLs with a user name or password are not accepted")
    if not _HOST.fullmatch(_host(parsed)) and parse_ip(_host(parsed)) is None:
        raise ImageRefused("the URL has no valid host name")
    return parsed


def check_passthrough_url(url: str, policy: UrlPolicy) -> str:
    """``url``, to hand to the API as is; refused if its host is a non-public IP or localhost."""
    parsed = parse_url(url)
    host = _host(parsed)
    ip = ipaddress.IPv4Address("127.0.0.1") if _is_localhost(host) else parse_ip(host)
    try:
        if ip is not None:
            policy.check_address(host, ip)
    except ImageRefused as exc:
        msg = f"{exc}: the API fetches image URLs itself and cannot reach it (allow_private_urls"
        raise ImageRefused(msg + " lets it through, for an API on this network)") from None
    return url


def resolve_host(host: str, port: int, policy: UrlPolicy) -> IPAddress:
    """The address to connect to for ``host``: every address it resolves to must pass."""
    literal = parse_ip(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = policy.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise ImageRefused(f"the host {shown(host)} cannot be resolved") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos]
    if not addresses:
        raise ImageRefused(f"the host {shown(host)} has no address")
    for address in addresses:
        policy.check_address(host, address)
    return addresses[0]


def _host(url: httpx2.URL) -> str:
    return url.raw_host.decode("ascii").lower().rstrip(".")


def _is_localhost(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


# -- downloading -----------------------------------------------------------------------------


def download(url: str, policy: UrlPolicy, *, prefix: int | None = None) -> bytes:
    """Fetch the image at ``url`` under ``policy``: pinned addresses, checked redirects, caps.

    With ``prefix``, only the first ``prefix`` bytes are read (enough for an image header, say):
    a longer body is cut there instead of refused.
    """
    deadline = time.monotonic() + policy.timeout
    client = policy.client or httpx2.Client(trust_env=False)  # no proxy resolves names for us
    try:
        for _ in range(policy.max_redirects + 1):
            request = pinned_request(client, url, policy, _time_left(deadline))
            response = _send(client, request, policy.timeout)
            try:
                location = response.headers.get("location")
                if not response.is_redirect or location is None:
                    _narrow_reads(request, deadline)
                    return _read_body(response, policy.max_bytes, deadline, prefix)
                url = _redirect_target(url, location)
            finally:
                response.close()
        raise ImageRefused(f"the URL redirects more than {policy.max_redirects} times")
    finally:
        if policy.client is None:
            client.close()


def pinned_request(
    client: httpx2.Client, url: str, policy: UrlPolicy, timeout: float | None = None
) -> httpx2.Request:
    """A GET for ``url`` sent to the checked address of its host, named in Host and SNI.

    ``timeout`` (default: the policy's) bounds each of its connect, write and read steps.
    """
    parsed = parse_url(url)
    host = _host(parsed)
    address = resolve_host(host, parsed.port or (443 if parsed.scheme == "https" else 80), policy)
    headers = {"host": parsed.netloc.decode("ascii"), "accept": "image/*"}
    headers["accept-encoding"] = "identity"  # sizes are then the bytes on the wire
    named = parsed.scheme == "https" and parse_ip(host) is None
    extensions = {"sni_hostname": host} if named else {}  # TLS checks the name, not the IP
    target = parsed.copy_with(host=str(address))
    timeout = policy.timeout if timeout is None else timeout
    return client.build_request(
        "GET", target, headers=headers, extensions=extensions, timeout=timeout
    )


def _redirect_target(url: str, location: str) -> str:
    try:
        return str(httpx2.URL(url).join(location))
    except (httpx2.InvalidURL, ValueError, TypeError):
        raise ImageRefused("the URL redirects to a malformed URL") from None


def _time_left(deadline: float) -> float:
    """Seconds left before ``deadline``; refused if none are."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise ImageRefused("downloading the image took too long")
    return left


def _narrow_reads(request: httpx2.Request, deadline: float) -> None:
    """Bound each read of the body by what is left of ``deadline``, not of the hop.

    httpcore2 reads the request's timeout dict when the body starts streaming, so updating it
    in place after the headers arrived narrows every body read (a no-op for other transports).
    """
    timeouts = request.extensions.get("timeout")
    if isinstance(timeouts, dict):
        timeouts["read"] = _time_left(deadline)


def _send(client: httpx2.Client, request: httpx2.Request, timeout: float) -> httpx2.Response:
    try:
        return client.send(request, stream=True, follow_redirects=False)
    except httpx2.TimeoutException:
        raise ImageRefused(f"downloading the image timed out after {timeout:g} s") from None
    except httpx2.HTTPError as exc:
        raise ImageRefused(f"the image cannot be downloaded ({type(exc).__name__})") from None


def _read_body(
    response: httpx2.Response, max_bytes: int, deadline: float, prefix: int | None
) -> bytes:
    if not response.is_success:
        raise ImageRefused(f"the image URL answered HTTP {response.status_code}")
    if response.headers.get("content-encoding", "identity").lower() not in {"", "identity"}:
        raise ImageRefused("the image URL answered with a compressed body")
    declared = response.headers.get("content-length", "")
    if prefix is None and declared.isdigit() and int(declared) > max_bytes:
        raise ImageRefused(f"the image is {int(declared):,} bytes; at most {max_bytes:,}")
    data = bytearray()
    for chunk in _chunks(response, deadline):
        data += chunk
        if prefix is not None and len(data) >= prefix:
            return bytes(data[:prefix])
        if len(data) > max_bytes:
            raise ImageRefused(f"the image is larger than {max_bytes:,} bytes")
    return bytes(data)


def _chunks(response: httpx2.Response, deadline: float) -> Iterator[bytes]:
    """The body as it arrives, within ``deadline``."""
    # A body built in memory (httpx2.MockTransport) arrives already read.
    chunks = [response.content] if response.is_stream_consumed else response.iter_raw()
    try:
        for chunk in chunks:
            yield chunk
            _time_left(deadline)
    except httpx2.TimeoutException:
        raise ImageRefused("downloading the image timed out") from None
    except httpx2.HTTPError as exc:
        raise ImageRefused(f"the download broke off ({type(exc).__name__})") from None


# -- everything together ---------------------------------------------------------------------


@dataclass(frozen=True)
class ImagePolicy:
    """Where ``describe_image`` may take images from."""

    allowed_dirs: Sequence[Path] = ()
    max_file_bytes: int = MAX_INPUT_BYTES
    urls: UrlPolicy = field(default_factory=UrlPolicy)


@dataclass(frozen=True)
class LoadedImage:
    """An accepted image: its ``source`` (a real path or a URL, never data) and its bytes.

    ``data`` is None for a URL to pass to the API as is.
    """

    source: str
    data: bytes | None


def load_image(image: str, policy: ImagePolicy) -> LoadedImage:
    """Apply ``policy`` to what an agent named and return the image, or raise ImageRefused."""
    kind = input_kind(image)
    if kind == "data":
        return LoadedImage("data: URL", decode_inline(image, policy.urls.max_bytes))
    if kind == "url" and not policy.urls.download:
        return LoadedImage(check_passthrough_url(image, policy.urls), None)
    if kind == "url":
        return LoadedImage(image, download(image, policy.urls))
    path = find_local_file(image, policy.allowed_dirs)
    return LoadedImage(str(path), read_local_file(path, policy.allowed_dirs, policy.max_file_bytes))
