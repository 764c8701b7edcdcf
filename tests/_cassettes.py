"""vcrpy cassettes: small, readable, secret-free recordings of Afarensis API traffic.

Replay is the default (``record_mode`` "none": a request with no recording fails the test and
nothing reaches the network). ``make cassettes`` re-records (``AFARENSIS_RECORD_MODE=all``)
against the local server, or against a real endpoint when ``AFARENSIS_API_KEY`` and
``AFARENSIS_BASE_URL`` are both set.

What a cassette keeps:
- request bodies as indented JSON, with every ``data:`` image URL replaced by a stable digest
  (``data:image/png;sha256=<hex>;bytes=<n>``) and tool-call ids numbered in order (LangChain's
  few-shot helpers make random ones); requests are matched on that normalised body, so a
  replayed request must carry exactly the same image bytes, and no cassette stores one;
- no credentials: ``authorization`` and every other key-bearing header are replaced;
- response headers only where they mean something to the client (content type, retry and
  rate-limit headers); bodies as plain text.
Matching ignores the host and port (``method``, ``path``, ``query``, ``body``), so a recording
from a local server on a random port replays anywhere.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests._support import ROOT

CASSETTES = ROOT / "cassettes"
RECORD_MODE = os.environ.get("AFARENSIS_RECORD_MODE", "none")
RECORDING = RECORD_MODE != "none"
REPLAY_KEY = "sk-replay-dummy"
REPLAY_BASE_URL = "http://afarensis.replay/v1"

_SECRET_HEADERS = [
    ("authorization", "PLACEHOLDER"),
    ("x-api-key", "PLACEHOLDER"),
    ("api-key", "PLACEHOLDER"),
    ("cookie", "PLACEHOLDER"),
    ("user-agent", "PLACEHOLDER"),
    ("host", None),
]
_KEPT_RESPONSE_HEADERS = re.compile(r"^(content-type|retry-after(-ms)?|x-ratelimit-.*)$", re.I)
_LOCAL_PORT = re.compile(r"^(https?://127\.0\.0\.1):\d+")
_DATA_URL = re.compile(r"^data:(?P<mime>[^;,]*)(?P<b64>;base64)?,(?P<payload>.*)$", re.S)


def image_digest(url: str) -> str:
    """A data URL's stable stand-in: its MIME type, the SHA-256 and length of its bytes."""
    match = _DATA_URL.match(url)
    if match is None:
        return url
    payload = match["payload"]
    data = base64.b64decode(payload) if match["b64"] else payload.encode()
    return f"data:{match['mime']};sha256={hashlib.sha256(data).hexdigest()};bytes={len(data)}"


def _normalise(node: Any, ids: dict[str, str]) -> Any:
    """Digest data URLs; number tool-call ids in order (some callers make them random)."""
    if isinstance(node, list):
        return [_normalise(item, ids) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "url" and isinstance(value, str) and value.startswith("data:"):
            out[key] = image_digest(value)
        elif key == "tool_call_id" or (key == "id" and node.get("type") == "function"):
            out[key] = ids.setdefault(str(value), f"call_{len(ids)}")
        else:
            out[key] = _normalise(value, ids)
    return out


def scrub_request(request: Any) -> Any:
    """Digest image payloads and pretty-print JSON bodies (used for recording and matching).

    A local server's random port is dropped from the URI, so re-recording changes no line.
    """
    request.uri = _LOCAL_PORT.sub(r"\1", request.uri)
    body = request.body
    if body:
        try:
            data = json.loads(body)
        except ValueError:
            return request
        request.body = json.dumps(_normalise(data, {}), indent=1, ensure_ascii=False).encode()
    return request


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Keep only the headers a client acts on (vcrpy itself stores text bodies as text)."""
    response["headers"] = {
        key: value
        for key, value in response["headers"].items()
        if _KEPT_RESPONSE_HEADERS.match(key)
    }
    return response


def vcr_config() -> dict[str, Any]:
    """The ``vcr_config`` fixture's value."""
    return {
        "record_mode": RECORD_MODE,
        "filter_headers": list(_SECRET_HEADERS),
        "before_record_request": scrub_request,
        "before_record_response": scrub_response,
        "match_on": ["method", "path", "query", "body"],
        "decode_compressed_response": True,
        "allow_playback_repeats": True,
        # LangChain's standard image tests' own download is answered locally (see
        # tests/_standard_images.py); the local server's fetch of it is not API traffic.
        "ignore_hosts": ["raw.githubusercontent.com"],
    }


def cassette_dir(test_file: Path) -> str:
    """One folder per test module under the top-level ``cassettes/``."""
    return str(CASSETTES / test_file.stem)


class Endpoint:
    """Where cassette tests send requests: a dummy on replay, a real server when recording."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.api_key = api_key


@contextlib.contextmanager
def endpoint() -> Iterator[Endpoint]:
    """The endpoint for this run (see the module docstring)."""
    if not RECORDING:
        yield Endpoint(REPLAY_BASE_URL, REPLAY_KEY)
        return
    key, base_url = os.environ.get("AFARENSIS_API_KEY"), os.environ.get("AFARENSIS_BASE_URL")
    if key and base_url:
        yield Endpoint(base_url, key)
        return
    from langchain_afarensis_vision.server import LocalAfarensisServer
    from tests import _standard_images

    with LocalAfarensisServer(
        ocr=False, image_transport=_standard_images.image_transport()
    ) as server:
        yield Endpoint(server.base_url, server.api_key)
