"""Shared fixtures: a clean environment, no outside name lookups, a scripted API for unit tests."""

from __future__ import annotations

import _socket
import ipaddress
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from langchain_afarensis_vision import ChatAfarensis
from tests import _cassettes
from tests._mock_api import MockAPI


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's real key or base URL."""
    monkeypatch.delenv("AFARENSIS_API_KEY", raising=False)
    monkeypatch.delenv("AFARENSIS_BASE_URL", raising=False)


# -- no test resolves an outside name -----------------------------------------------------------

_LOOKUPS_REFUSED: list[str] = []


def is_local_name(host: str | bytes | None) -> bool:
    """Whether resolving ``host`` stays on this machine: localhost or an IP literal."""
    if host is None:
        return True
    text = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
    name = text.strip("[]").partition("%")[0].rstrip(".").lower()
    if name in ("", "localhost") or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        try:
            socket.inet_aton(name)  # 127.1, 2130706433: numeric, never looked up
        except OSError:
            return False
    return True


def _guarded(real: Callable[..., Any]) -> Callable[..., Any]:
    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_local_name(host):
            _LOOKUPS_REFUSED.append(str(host))
            raise socket.gaierror(
                socket.EAI_NONAME, f"tests may not resolve {host!r}: inject a resolver"
            )
        return real(host, *args, **kwargs)

    return lookup


@pytest.fixture(scope="session", autouse=True)
def _no_outside_lookups() -> Iterator[None]:
    """Name lookups of anything but localhost and IP literals are refused (as an unknown name)
    for the whole session, so no test can reach a real DNS server: a test that needs a name
    injects a resolver (``getaddrinfo=``, an ``httpx2.MockTransport``).

    pytest-socket swaps ``socket.getaddrinfo`` only in tests without sockets, and not where a
    reference was taken at import (``UrlPolicy``'s default resolver); ``_socket.getaddrinfo``,
    which ``socket.getaddrinfo`` calls, is guarded here for every test and every reference
    (asyncio, httpx2 and uvicorn resolve through it). Subprocesses (the CLI, notebook kernels)
    are not covered."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_socket, "getaddrinfo", _guarded(_socket.getaddrinfo))
        yield


@pytest.fixture(autouse=True)
def _report_outside_lookups() -> Iterator[None]:
    """Fail the test that tried an outside lookup, even if the code under test swallowed it."""
    del _LOOKUPS_REFUSED[:]
    yield
    tried = sorted(set(_LOOKUPS_REFUSED))
    del _LOOKUPS_REFUSED[:]
    assert not tried, f"the test tried to resolve {tried}: inject a resolver instead"


@pytest.fixture
def api() -> MockAPI:
    return MockAPI()


@pytest.fixture
def make_model(api: MockAPI) -> Callable[..., ChatAfarensis]:
    """Build ChatAfarensis instances wired to the scripted API, with no retry delays."""

    def make(**kwargs: Any) -> ChatAfarensis:
        params: dict[str, Any] = {"api_key": "sk-test-secret-key-0123456789", "max_retries": 0}
        params.update(api.clients())
        params.update(kwargs)
        return ChatAfarensis(**params)

    return make


@pytest.fixture(scope="session")
def vcr_config() -> dict[str, Any]:
    """Cassette settings: replay by default, secrets and image payloads scrubbed."""
    return _cassettes.vcr_config()


@pytest.fixture
def vcr_cassette_dir(request: pytest.FixtureRequest) -> str:
    """``cassettes/<test module>/`` at the top of the repository."""
    return _cassettes.cassette_dir(request.node.path)
