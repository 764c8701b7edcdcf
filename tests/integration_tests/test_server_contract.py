"""The local server enforces the wire contract: auth, models, body validation, error bodies."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import httpx2
import pytest

from langchain_afarensis_vision.server import DEFAULT_MODELS, LocalAfarensisServer
from tests._schema import assert_valid
from tests._support import OPENAPI_SPEC
from tests.integration_tests.conftest import (
    MODEL,
    assert_error,
    body,
    data_url,
    image_bytes,
    image_part,
    ok_json,
    user,
)

pytestmark = pytest.mark.enable_socket

HELLO = body({"role": "user", "content": "Hello"})


def test_vendored_spec_is_the_published_one() -> None:
    """The package's copy of the wire schema is byte for byte the one SPEC_NOTICE.md pins."""
    from importlib import resources

    server = resources.files("langchain_afarensis_vision.server")
    vendored = (server / "openapi-chat-completions.json").read_bytes()
    pinned = re.search(r"SHA-256 `([0-9a-f]{64})`", (server / "SPEC_NOTICE.md").read_text())
    assert pinned is not None
    assert hashlib.sha256(vendored).hexdigest() == pinned.group(1)
    assert vendored == OPENAPI_SPEC.read_bytes()  # and the tests validate against that copy


# -- auth --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer sk-wrong-key-000000000000"},
        {"authorization": "Basic c2stbG9jYWw="},
        {"authorization": "Bearer"},
    ],
    ids=["missing", "wrong", "not-bearer", "empty"],
)
def test_bad_key_is_401(afarensis_server: LocalAfarensisServer, headers: dict[str, str]) -> None:
    response = httpx2.post(
        f"{afarensis_server.base_url}/chat/completions", json=HELLO, headers=headers
    )
    data = assert_error(response, 401, "invalid_api_key", None)
    assert data["error"]["type"] == "authentication_error"
    assert "sk-wrong-key-000000000000" not in response.text  # a wrong key is masked
    assert "x-ratelimit-limit-requests" not in response.headers


def test_models_need_a_key(afarensis_server: LocalAfarensisServer) -> None:
    response = httpx2.get(f"{afarensis_server.base_url}/models")
    assert_error(response, 401, "invalid_api_key")


# -- models ------------------------------------------------------------------------------------


def test_list_and_get_models(client: httpx2.Client) -> None:
    listing = client.get("/models").json()
    assert listing["object"] == "list"
    assert [m["id"] for m in listing["data"]] == list(DEFAULT_MODELS)
    for model in listing["data"]:
        assert set(model) == {"id", "object", "created", "owned_by"}
        assert model["object"] == "model"
        assert isinstance(model["created"], int)
    assert client.get(f"/models/{MODEL}").json()["id"] == MODEL
    assert_error(client.get("/models/gpt-5"), 404, "model_not_found", "model")


def test_unknown_model_is_404(client: httpx2.Client) -> None:
    response = client.post("/chat/completions", json={**HELLO, "model": "gpt-4o"})
    data = assert_error(response, 404, "model_not_found", "model")
    assert data["error"]["type"] == "invalid_request_error"
    assert "x-ratelimit-remaining-requests" in response.headers


@pytest.mark.parametrize("model", DEFAULT_MODELS)
def test_every_served_model_answers_under_its_name(client: httpx2.Client, model: str) -> None:
    data = ok_json(client.post("/chat/completions", json={**HELLO, "model": model}))
    assert data["model"] == model


def test_the_served_models_are_configurable(start_server: Any) -> None:
    server = start_server(models=("my-vision-model",))
    headers = {"authorization": f"Bearer {server.api_key}"}
    url = f"{server.base_url}/chat/completions"
    ok = httpx2.post(url, json={**HELLO, "model": "my-vision-model"}, headers=headers)
    assert ok.status_code == 200
    assert_error(httpx2.post(url, json=HELLO, headers=headers), 404, "model_not_found")


# -- body validation ---------------------------------------------------------------------------

_PNG = data_url(image_bytes())
_PART = "messages[0].content[0]"
_URL = f"{_PART}.image_url.url"
_F = {"type": "function", "function": {"name": "f"}}
_AUDIO = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
_BAD_BODIES: list[tuple[str, Any, str | None]] = [
    ("not-json", b"{nope", None),
    ("not-an-object", b"[1, 2]", None),
    ("no-model", {"messages": [{"role": "user", "content": "hi"}]}, "model"),
    ("no-messages", {"model": MODEL}, "messages"),
    ("empty-messages", {"model": MODEL, "messages": []}, "messages"),
    ("bad-role", body({"role": "wizard", "content": "hi"}), "messages[0].role"),
    ("no-content", body({"role": "user"}), "messages[0].content"),
    ("bad-detail", body(user(image_part(_PNG, "ultra"))), f"{_PART}.image_url.detail"),
    ("no-url", body(user({"type": "image_url", "image_url": {}})), _URL),
    ("text-part-without-text", body(user({"type": "text"})), f"{_PART}.text"),
    ("max-tokens-type", {**HELLO, "max_tokens": "ten"}, "max_tokens"),
    ("temperature-range", {**HELLO, "temperature": 3}, "temperature"),
    ("too-many-stops", {**HELLO, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ("unknown-argument", {**HELLO, "frobnicate": True}, "frobnicate"),
    ("tool-without-function", {**HELLO, "tools": [{"type": "function"}]}, "tools[0].function"),
    ("bad-tool-choice", {**HELLO, "tool_choice": "sometimes"}, "tool_choice"),
    ("tool-without-id", body({"role": "tool", "content": "x"}), "messages[0].tool_call_id"),
    ("image-in-system", body({"role": "system", "content": [image_part(_PNG)]}), _PART),
    (
        "image-in-tool",
        body({"role": "tool", "tool_call_id": "1", "content": [image_part(_PNG)]}),
        _PART,
    ),
    ("image-in-assistant", body({"role": "assistant", "content": [image_part(_PNG)]}), _PART),
    ("audio-input", body(user(_AUDIO)), _PART),
    ("max-tokens-zero", {**HELLO, "max_tokens": 0}, "max_tokens"),
    ("max-tokens-too-many", {**HELLO, "max_tokens": 4097}, "max_tokens"),
    (
        "options-without-stream",
        {**HELLO, "stream_options": {"include_usage": True}},
        "stream_options",
    ),
    ("tool-choice-without-tools", {**HELLO, "tool_choice": "required"}, "tool_choice"),
    (
        "unknown-forced-tool",
        {**HELLO, "tools": [_F], "tool_choice": {**_F, "function": {"name": "g"}}},
        "tool_choice",
    ),
    ("custom-tool", {**HELLO, "tools": [{"type": "custom", "custom": {"name": "c"}}]}, "tools[0]"),
    ("functions", {**HELLO, "functions": [{"name": "f"}]}, "functions"),
    ("ftp-image-url", body(user(image_part("ftp://example.com/a.png"))), _URL),
    ("file-image-url", body(user(image_part("file:///etc/passwd"))), _URL),
]


@pytest.mark.parametrize(
    ("payload", "param"), [(p, q) for _, p, q in _BAD_BODIES], ids=[n for n, _, _ in _BAD_BODIES]
)
def test_bad_body_is_400_naming_the_field(
    client: httpx2.Client, payload: Any, param: str | None
) -> None:
    if isinstance(payload, bytes):
        response = client.post(
            "/chat/completions", content=payload, headers={"content-type": "application/json"}
        )
    else:
        response = client.post("/chat/completions", json=payload)
    data = assert_error(response, 400, "invalid_value", param)
    assert data["error"]["type"] == "invalid_request_error"
    assert data["error"]["message"]


def test_context_window_is_enforced(client: httpx2.Client) -> None:
    long_text = " x" * 128_000  # 128,000 tokens
    response = client.post("/chat/completions", json=body(user(long_text)))
    data = assert_error(response, 400, "invalid_value", "messages")
    assert "maximum context length is 128000" in data["error"]["message"]


def test_body_size_cap(start_server: Any) -> None:
    server = start_server(max_body_bytes=10_000)
    payload = body(user("x" * 20_000))
    response = httpx2.post(
        f"{server.base_url}/chat/completions",
        json=payload,
        headers={"authorization": f"Bearer {server.api_key}"},
    )
    assert_error(response, 400, "invalid_value", None)


def test_unknown_path_and_method_answer_json_errors(client: httpx2.Client) -> None:
    missing = client.get("/embeddings")
    assert missing.status_code == 404
    assert_valid("ErrorResponse", missing.json())
    wrong_method = client.get("/chat/completions")
    assert wrong_method.status_code == 405
    assert_valid("ErrorResponse", wrong_method.json())


def test_health_needs_no_key(afarensis_server: LocalAfarensisServer) -> None:
    base = afarensis_server.base_url.removesuffix("/v1")
    assert httpx2.get(f"{base}/health").json() == {"status": "ok"}


def test_every_answer_validates(client: httpx2.Client) -> None:
    """A sample of answers of every kind, each body against its schema."""
    png = data_url(image_bytes())
    requests: list[dict[str, Any]] = [
        HELLO,
        body(user("What is this?", image_part(png, "low"))),
        {**HELLO, "n": 3},
        {**HELLO, "stop": "Afarensis"},
        {**HELLO, "max_tokens": 1},
        {**HELLO, "response_format": {"type": "json_object"}},
        body(
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi", "name": "someone"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        ),
    ]
    for payload in requests:
        ok_json(client.post("/chat/completions", json=payload))


# -- the compiled schema accepts exactly what the spec accepts ---------------------------------

_VALID: list[dict[str, Any]] = [
    HELLO,
    body(user("What is this?", image_part("https://example.com/a.png", "high"))),
    body(
        {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "system", "content": "You describe images.", "name": "sys"},
        {"role": "user", "content": "hi", "name": "someone"},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "calling"}, {"type": "refusal", "refusal": "no"}],
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "42"}]},
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        tool_choice={"type": "function", "function": {"name": "f"}},
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
        stop=["a", "b"],
        stream=True,
        stream_options={"include_usage": True},
    ),
]


def _mutations(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """(path, replacement) pairs: each field removed (as a marker), retyped or re-valued."""
    found: list[tuple[tuple[Any, ...], Any]] = []
    replacements: list[Any] = [None, 7, "text", [], {}, {"type": "nope"}, "image_url", "user"]
    for replacement in replacements:
        found.append((path, replacement))
    if isinstance(value, dict):
        for key, item in value.items():
            found.append(((*path, key), _REMOVE))
            found += _mutations(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _mutations(item, (*path, index))
    return found


_REMOVE = object()


def _apply(value: Any, path: tuple[Any, ...], replacement: Any) -> Any:
    if not path:
        return replacement
    head, *rest = path
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    if not rest and replacement is _REMOVE:
        del copy[head]
    else:
        copy[head] = _apply(value[head], tuple(rest), replacement)
    return copy


def test_compiled_schema_matches_the_spec() -> None:
    from langchain_afarensis_vision.server._validation import _validator
    from tests._schema import validator as reference

    checked = 0
    for valid in _VALID:
        for path, replacement in _mutations(valid):
            candidate = _apply(valid, path, replacement)
            expected = reference("CreateChatCompletionRequest").is_valid(candidate)
            assert _validator().is_valid(candidate) == expected, (path, replacement)
            checked += 1
    assert checked > 500
