"""Compare offline cl100k_base tokenizers on the agreement corpus (tests/_token_corpus.py).

Not part of ``make bench``: it needs every candidate installed side by side, e.g. in a scratch
venv: ``pip install tiktoken bpe-openai rs-bpe quicktok-v1`` and this checkout's test deps.
tiktoken is the reference; it gets its vocabulary from the chosen package's bundled data (see
``tests/unit_tests/_api/test_tokenizer.py``), so nothing is downloaded. Prints, per candidate: the
time to import and load cl100k_base, the time to encode the corpus, and the number of documents
whose token ids differ from tiktoken's.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests._tiktoken_offline import offline_tiktoken
from tests._token_corpus import corpus

Encoder = Callable[[str], list[int]]


def _quicktok() -> Encoder:
    quicktok = importlib.import_module("quicktok")
    encoding = quicktok.get_encoding("cl100k_base")
    return lambda text: list(encoding.encode_ordinary(text))


def _bpe_openai() -> Encoder:
    encoding = importlib.import_module("bpe_openai").get_encoding("cl100k_base")
    return lambda text: list(encoding.encode_ordinary(text))


def _rs_bpe() -> Encoder:
    tokenizer = importlib.import_module("rs_bpe.bpe").openai.cl100k_base()
    return lambda text: list(tokenizer.encode(text))


def _tiktoken() -> Encoder:
    return offline_tiktoken().encode_ordinary


CANDIDATES: dict[str, Callable[[], Encoder]] = {
    "quicktok-v1": _quicktok,  # first: tiktoken's vocabulary is rebuilt from quicktok's
    "bpe-openai": _bpe_openai,
    "rs-bpe": _rs_bpe,
    "tiktoken (vocab supplied)": _tiktoken,
}


def main() -> None:
    documents = corpus()
    chars = sum(map(len, documents))
    print(f"corpus: {len(documents):,} documents, {chars:,} characters")
    results: dict[str, list[list[int]]] = {}
    for name, load in CANDIDATES.items():
        start = time.perf_counter()
        encode = load()
        loaded = time.perf_counter() - start
        start = time.perf_counter()
        ids = [encode(document) for document in documents]
        took = time.perf_counter() - start
        results[name] = ids
        print(
            f"{name:<26} load {loaded * 1000:7.1f} ms  encode {took:6.2f} s "
            f"({chars / took / 1e6:5.2f} M chars/s)  {sum(map(len, ids)):,} tokens"
        )
    reference = results.pop("tiktoken (vocab supplied)")
    for name, ids in results.items():
        differ = sum(a != b for a, b in zip(ids, reference, strict=True))
        print(f"{name}: {differ} of {len(documents)} documents differ from tiktoken's ids")


if __name__ == "__main__":
    main()
