"""The server's bounded JSON reading: the same values as ``json.loads``, within bounds."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_afarensis_vision.server._errors import APIError
from langchain_afarensis_vision.server._json import LONG_STRING, parse_json
from langchain_afarensis_vision.server.settings import MAX_JSON_DEPTH, MAX_JSON_VALUES

LONG = "x" * LONG_STRING


def _refused(raw: bytes) -> APIError:
    with pytest.raises(APIError) as raised:
        parse_json(raw)
    assert (raised.value.status, raised.value.code) == (400, "invalid_value")
    return raised.value


@pytest.mark.parametrize(
    "body",
    [
        {"a": LONG, "b": [LONG + "y", {"c": LONG * 3}], "d": "short"},
        {LONG: 1, "k": {LONG + "z": [1, 2, {LONG: LONG}]}},  # long keys too
        {"text": 'quotes " and \\ backslashes\n\t' * 500, "tail": LONG},
        {"unicode": "żółw 🐢 \u2028" * 2000, "ascii": LONG},
        {"escaped": json.dumps({"nested": LONG})},  # JSON text inside a string
    ],
    ids=["values", "keys", "escapes", "unicode", "json-in-string"],
)
@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_long_strings_are_read_as_json_reads_them(body: dict[str, Any], ensure_ascii: bool) -> None:
    raw = json.dumps(body, ensure_ascii=ensure_ascii).encode()
    assert parse_json(raw) == json.loads(raw) == body


def test_escaped_surrogate_pairs_make_one_character() -> None:
    raw = b'{"s": "' + b"\\ud83d\\ude00" * LONG_STRING + b'"}'
    assert parse_json(raw) == json.loads(raw) == {"s": "\U0001f600" * LONG_STRING}


def test_a_placeholder_lookalike_is_left_alone() -> None:
    body = {"a": "\x00deadbeefdeadbeef:0", "b": LONG}
    assert parse_json(json.dumps(body).encode()) == body


@st.composite
def _documents(draw: st.DrawFn) -> dict[str, Any]:
    leaves = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    leaves |= st.sampled_from([LONG, LONG + '"\\', "é" * LONG_STRING])
    tree = st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=20,
    )
    return draw(st.dictionaries(st.text(max_size=8), tree, max_size=4))


@settings(max_examples=150, deadline=None, database=None)
@given(body=_documents(), ensure_ascii=st.booleans(), indent=st.sampled_from([None, 1]))
def test_any_document_reads_as_json_reads_it(
    body: dict[str, Any], ensure_ascii: bool, indent: int | None
) -> None:
    raw = json.dumps(body, ensure_ascii=ensure_ascii, indent=indent).encode()
    assert parse_json(raw) == json.loads(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": "' + b"x" * LONG_STRING + b"\n" + b'"}',  # a raw control character
        b'{"a": "' + b"x" * LONG_STRING + b'\\q"}',  # an unknown escape
        b'{"a": "' + b"\xff" * LONG_STRING + b'"}',  # not UTF-8
        b'{"a": "' + b"x" * LONG_STRING,  # unterminated
        b'{"a": "x\\',
        b'{"a": 1,}',
        b"[1, 2]",
        b"",
    ],
    ids=[
        "control",
        "escape",
        "utf8",
        "unterminated",
        "trailing-backslash",
        "comma",
        "array",
        "empty",
    ],
)
def test_what_json_refuses_is_a_400(raw: bytes) -> None:
    _refused(raw)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 500, 5_000, 100_000])
@pytest.mark.parametrize(("opener", "closer"), [("[", "]"), ('{"a":', "}")])
@pytest.mark.parametrize("where", ["top", "field"])
def test_deep_nesting_is_a_400_not_a_recursion_error(
    depth: int, opener: str, closer: str, where: str
) -> None:
    nested = opener * depth + "1" + closer * depth
    raw = nested if where == "top" else f'{{"model": "m", "metadata": {nested}}}'
    error = _refused(raw.encode())
    assert f"nested more than {MAX_JSON_DEPTH} levels" in error.message


def test_nesting_at_the_bound_is_read() -> None:
    nested = "[" * (MAX_JSON_DEPTH - 1) + "1" + "]" * (MAX_JSON_DEPTH - 1)
    assert parse_json(b'{"a": %s}' % nested.encode())["a"][0]


def test_brackets_inside_strings_are_not_structure() -> None:
    text = "[{" * 10_000 + "," * (MAX_JSON_VALUES + 10)
    assert parse_json(json.dumps({"text": text, "short": "[[[{{{"}).encode())["text"] == text


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": [' + b"[]," * MAX_JSON_VALUES + b"[]]}",
        b'{"a": [' + b'"",' * MAX_JSON_VALUES + b'""]}',
        b'{"a": [' + b'{"type": "text", "text": "hi"},' * (MAX_JSON_VALUES // 2) + b"{}]}",
    ],
    ids=["empty-arrays", "empty-strings", "objects"],
)
def test_too_many_values_are_refused_before_parsing(raw: bytes) -> None:
    assert f"more than {MAX_JSON_VALUES:,} values" in _refused(raw).message
