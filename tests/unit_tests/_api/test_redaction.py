"""``mask``: the key a server echoes back is masked as it is and in its encoded forms."""

from __future__ import annotations

import base64
import urllib.parse

import pytest

from langchain_afarensis_vision._api.redaction import MASK, mask

KEY = "sk-test-SECRET+/9f8e7d6c5b4a39281706"
MIDDLE = "SECRET"


def _percent_all(text: str) -> str:
    return "".join(f"%{byte:02x}" for byte in text.encode())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    "echo",
    [
        pytest.param(f"Incorrect API key provided: {KEY}.", id="plain"),
        pytest.param(f"key={urllib.parse.quote(KEY, safe='')}", id="url-quoted"),
        pytest.param(f"key={urllib.parse.quote_plus(KEY)}", id="url-quote-plus"),
        pytest.param(f"?k={_percent_all(KEY)}&x=1", id="every-character-percent-encoded"),
        pytest.param(f"?k={_percent_all(KEY).upper()}", id="upper-case-hex"),
        pytest.param(urllib.parse.quote(urllib.parse.quote(KEY, safe="")), id="double-encoded"),
        pytest.param(f"Basic {_b64(f'user:{KEY}'.encode())}", id="basic-credentials"),
        pytest.param(_b64(KEY.encode()), id="base64"),
        pytest.param(_b64(b"x" + KEY.encode()), id="base64-offset-1"),
        pytest.param(_b64(b"xy" + KEY.encode() + b"tail"), id="base64-offset-2"),
        pytest.param(base64.urlsafe_b64encode(b"x" + KEY.encode()).decode(), id="url-safe-base64"),
    ],
)
def test_every_form_of_the_key_is_masked(echo: str) -> None:
    masked = mask({"error": {"message": echo}, "list": [echo]}, KEY)
    for text in (masked["error"]["message"], masked["list"][0]):
        assert MASK in text
        assert KEY not in text
        assert MIDDLE not in urllib.parse.unquote(urllib.parse.unquote(text))
        assert not any(form in text for form in _middle_in_base64())


def _middle_in_base64() -> list[str]:
    """The characters any base64 text holding the key's middle contains, at each offset."""
    forms = []
    for k in range(3):
        encoded = _b64(bytes(k) + MIDDLE.encode())
        core = encoded[(8 * k + 5) // 6 : 8 * (k + len(MIDDLE)) // 6]
        forms += [core, core.replace("+", "-").replace("/", "_")]
    return forms


def test_text_without_the_key_is_left_as_it_is() -> None:
    text = "100% of the quota; dXNlcjpzay1vdGhlcg== is another key; %73k"
    assert mask(text, KEY) == text
    assert mask(text, None) == text
