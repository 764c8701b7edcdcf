"""Exact, offline text tokens: two implementations agree, published counts are reproduced.

The counter is quicktok (its cl100k_base vocabulary ships in its wheel); the reference is tiktoken,
OpenAI's own implementation, given the same vocabulary offline after checking it against the
SHA-256 that tiktoken expects of the file it would download (``tests/_tiktoken_offline.py``).
These tests run with sockets disabled, like the whole suite.

Published figures are from OpenAI's cookbook, "How to count tokens with tiktoken"
(github.com/openai/openai-cookbook, examples/How_to_count_tokens_with_tiktoken.ipynb): the
token ids of four strings in cl100k_base, 129 prompt tokens for its example messages on
gpt-4-0613 and 105 for its weather-tool example on gpt-4, both as counted by the OpenAI API.
"""

from __future__ import annotations

import hashlib
import sys
import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterator

import pytest

from langchain_afarensis_vision._api import tokenizer as _tokenizer
from langchain_afarensis_vision._api.contract import prompt_text_tokens, text_tokens
from tests._tiktoken_offline import offline_tiktoken, tiktoken_file
from tests._token_corpus import corpus

TIKTOKEN_CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
"""The hash tiktoken checks its downloaded cl100k_base.tiktoken against (tiktoken_ext)."""


def quicktok_ids(text: str) -> list[int]:
    encoding = _tokenizer._encoding()
    assert encoding is not None
    return list(encoding.encode_ordinary(text))


def test_the_bundled_vocabulary_is_openais_file() -> None:
    assert hashlib.sha256(tiktoken_file()).hexdigest() == TIKTOKEN_CL100K_SHA256


def _scripts(documents: list[str]) -> Counter[str]:
    """Characters by Unicode script family (the first word of their name), for the report."""
    counts: Counter[str] = Counter()
    for document in documents:
        for char in document[:2000]:
            counts[unicodedata.name(char, "UNNAMED").split(" ")[0]] += 1
    return counts


def test_two_implementations_agree_on_a_million_characters() -> None:
    documents = corpus()
    chars = sum(map(len, documents))
    assert chars >= 1_000_000
    scripts = _scripts(documents)
    for family in ("CJK", "HIRAGANA", "HANGUL", "ARABIC", "HEBREW", "CYRILLIC", "GREEK"):
        assert scripts[family] > 1000, family
    for family in ("DEVANAGARI", "THAI", "ETHIOPIC", "GEORGIAN", "LATIN", "DIGIT"):
        assert scripts[family] > 1000, family
    assert sum(document.count("\u200d") for document in documents) > 100  # emoji ZWJ sequences
    reference = offline_tiktoken()
    mismatches = [
        i
        for i, text in enumerate(documents)
        if quicktok_ids(text) != reference.encode_ordinary(text)
    ]
    assert mismatches == []
    counted = sum(map(text_tokens, documents))
    assert counted == sum(len(reference.encode_ordinary(text)) for text in documents)


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("tiktoken is great!", [83, 1609, 5963, 374, 2294, 0]),
        ("antidisestablishmentarianism", [519, 85342, 34500, 479, 8997, 2191]),
        ("2 + 2 = 4", [17, 489, 220, 17, 284, 220, 19]),
        ("お誕生日おめでとう", [33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699]),
    ],
)
def test_the_cookbooks_published_token_ids(text: str, ids: list[int]) -> None:
    assert quicktok_ids(text) == ids
    assert text_tokens(text) == len(ids)


COOKBOOK_MESSAGES = [
    {
        "role": "system",
        "content": (
            "You are a helpful, pattern-following assistant that translates corporate jargon "
            "into plain English."
        ),
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": (
            "Let's circle back when we have more bandwidth to touch base on opportunities for "
            "increased leverage."
        ),
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": (
            "This late pivot means we don't have time to boil the ocean for the client deliverable."
        ),
    },
]

COOKBOOK_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {
                        "type": "string",
                        "description": "The city and state, e.g. San Francisco, CA",
                    },
                    "unit": {
                        "type": "string",
                        "description": "The unit of temperature to return",
                        "enum": ["celsius", "fahrenheit"],
                    },
                },
                "required": ["location"],
            },
        },
    }
]

COOKBOOK_TOOL_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful assistant that can answer to questions about the weather.",
    },
    {"role": "user", "content": "What's the weather like in San Francisco?"},
]


def test_the_cookbooks_messages_cost_what_the_api_reported() -> None:
    assert prompt_text_tokens(COOKBOOK_MESSAGES) == 129  # gpt-4-0613, as the API counted


def test_the_cookbooks_tool_example_costs_what_the_api_reported() -> None:
    assert prompt_text_tokens(COOKBOOK_TOOL_MESSAGES, COOKBOOK_TOOLS) == 105  # gpt-4, the API


# -- without quicktok: the estimate, one warning, no network -------------------------------------


@pytest.fixture
def no_quicktok(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(sys.modules, "quicktok", None)  # import quicktok -> ImportError
    _tokenizer._encoding.cache_clear()
    yield
    _tokenizer._encoding.cache_clear()


@pytest.mark.usefixtures("no_quicktok")
def test_without_quicktok_the_estimate_with_one_warning() -> None:
    with pytest.warns(RuntimeWarning, match="quicktok-v1") as caught:
        assert text_tokens("x" * 41) == 11  # four characters a token, rounded up
    assert len(caught) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second warning would raise
        assert text_tokens("abcd") == 1
        assert not _tokenizer.exact()
        assert _tokenizer.truncate("abcdefghij", 2) == "abcdefgh"


def test_truncate_keeps_whole_tokens() -> None:
    text = "tiktoken is great! " * 3
    assert _tokenizer.truncate(text, 6) == "tiktoken is great!"
    assert _tokenizer.truncate(text, 100) == text
    cut = _tokenizer.truncate("お誕生日おめでとう", 2)  # the 2nd token is half a character
    assert cut == "お"
