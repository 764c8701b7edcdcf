"""cl100k_base, the encoding of GPT-4 with Vision: exact text tokens, offline.

The counter is quicktok (PyPI ``quicktok-v1``, MIT), whose wheel ships the cl100k_base
vocabulary: nothing is downloaded, ever. Its vocabulary is byte-identical to the file tiktoken
downloads (same SHA-256), and its counts agree with tiktoken's on a 1.2-million-character corpus
in many scripts (``tests/unit_tests/_api/test_tokenizer.py``). Text is encoded as ordinary text:
``<|endoftext|>`` in a message is billed as the characters it is, never as a special token.

Where quicktok cannot be imported (a platform without its wheel), counts fall back to the
estimate of four characters a token, with one warning; never a network call.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import Any, Final

ENCODING: Final = "cl100k_base"
"""GPT-4 with Vision's text encoding."""
CHARS_PER_TOKEN: Final = 4
"""The fallback estimate: four characters a token, rounded up."""
FALLBACK_WARNING: Final = (
    "quicktok (PyPI: quicktok-v1) is not installed: text tokens are estimated at four "
    "characters a token, not counted exactly. `pip install quicktok-v1` for exact counts."
)


@functools.cache
def _encoding() -> Any | None:
    """The cl100k_base encoding, loaded once (about 0.1 s); None where quicktok is missing."""
    try:
        import quicktok  # loaded on the first count, not on import
    except ImportError:
        warnings.warn(FALLBACK_WARNING, RuntimeWarning, stacklevel=4)
        return None
    return quicktok.get_encoding(ENCODING)


def exact() -> bool:
    """Whether text is counted exactly (quicktok is installed), not estimated."""
    return _encoding() is not None


def count(text: str) -> int:
    """Tokens in ``text`` as GPT-4 with Vision encodes it (cl100k_base, ordinary text)."""
    encoding = _encoding()
    if encoding is None:
        return math.ceil(len(text) / CHARS_PER_TOKEN)
    return int(encoding.count(text))


def truncate(text: str, tokens: int) -> str:
    """The longest prefix of ``text`` that is at most ``tokens`` tokens (whole tokens)."""
    encoding = _encoding()
    if encoding is None:
        return text[: tokens * CHARS_PER_TOKEN]
    ids = encoding.encode_ordinary(text)
    if len(ids) <= tokens:
        return text
    decode: Callable[[list[int]], bytes] = encoding.decode_bytes
    return decode(list(ids[:tokens])).decode("utf-8", errors="ignore")
