"""tiktoken, OpenAI's reference tokenizer, made to work offline: the independent second counter.

tiktoken downloads its ``cl100k_base.tiktoken`` vocabulary at run time. Here its file reader is
replaced, for one call, by one that serves the vocabulary rebuilt from quicktok's bundled data
(each rank's bytes, base64, in tiktoken's file format) after checking it against the SHA-256 that
tiktoken itself expects for the file it would download. tiktoken's own code then builds the
encoding: its own split pattern, its own special tokens, its own BPE. Nothing is downloaded.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from unittest import mock

import quicktok
import tiktoken
import tiktoken.load
from tiktoken_ext import openai_public

CL100K_RANKS = 100_256
"""Ranks 0..100255: cl100k_base's ordinary tokens (the special tokens come after)."""


def tiktoken_file() -> bytes:
    """quicktok's cl100k_base vocabulary in tiktoken's file format."""
    encoding = quicktok.get_encoding("cl100k_base")
    return b"".join(
        base64.b64encode(encoding.decode_single_token_bytes(rank)) + b" %d\n" % rank
        for rank in range(CL100K_RANKS)
    )


def _serve(blobpath: str, expected_hash: str | None = None) -> bytes:
    if not blobpath.endswith("/cl100k_base.tiktoken"):
        msg = f"only cl100k_base is available offline, not {blobpath}"
        raise AssertionError(msg)
    data = tiktoken_file()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_hash:
        msg = f"quicktok's cl100k_base is not OpenAI's file: sha256 {actual} != {expected_hash}"
        raise AssertionError(msg)
    return data


@functools.cache
def offline_tiktoken() -> tiktoken.Encoding:
    """tiktoken's cl100k_base, its vocabulary checked against tiktoken's expected hash."""
    with mock.patch.object(tiktoken.load, "read_file_cached", _serve):
        return tiktoken.Encoding(**openai_public.cl100k_base())
