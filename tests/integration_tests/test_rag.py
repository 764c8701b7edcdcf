"""RAG over a folder of images: loader -> local server over real HTTP -> vector store -> query.

The local server's offline engine describes what it can measure (format, size, colours,
brightness), so a lexical embedding can honestly retrieve an image by those facts.
"""

from __future__ import annotations

import hashlib
import math
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import InMemoryVectorStore
from PIL import Image

from langchain_afarensis_vision import ChatAfarensis
from langchain_afarensis_vision.document_loaders import AfarensisImageLoader, ImageSkippedWarning
from langchain_afarensis_vision.server import LocalAfarensisServer
from tests._support import TEST_IMAGES

pytestmark = pytest.mark.enable_socket  # loopback HTTP to the local server

REAL_PHOTOS = ["flower.jpg", "flower.webp", "flower2.jpg", "hopper.jpg", "hopper.png", "iss634.gif"]
SOLID = {"red.png": ((64, 48), (220, 20, 20)), "blue.jpg": ((200, 100), (20, 40, 230))}
TIMEOUT = 30.0  # httpx2's default of 5 s is short on a busy machine
IMAGES = sorted(name for name in [*REAL_PHOTOS, *SOLID] if name != "iss634.gif")


class BagOfWords(Embeddings):
    """Word counts hashed into a fixed-size vector, L2-normalised: plain lexical similarity."""

    def __init__(self, dims: int = 4096) -> None:
        self.dims = dims

    def _embed(self, text: str) -> list[float]:
        vector = [0.0] * self.dims
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            vector[int.from_bytes(digest, "big") % self.dims] += 1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)


def model(server: LocalAfarensisServer, **clients: Any) -> ChatAfarensis:
    """A model talking HTTP to ``server``, on clients the test closes (no leaked sockets)."""
    return ChatAfarensis(base_url=server.base_url, api_key=server.api_key, max_retries=0, **clients)


@pytest.fixture(scope="module")
def llm(afarensis_server: LocalAfarensisServer) -> Iterator[ChatAfarensis]:
    """The session's local server (conftest.py), over a sync client closed at the end."""
    with httpx2.Client(timeout=TIMEOUT) as client:
        yield model(afarensis_server, http_client=client)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real sample photos, an animated GIF (refused) and two solid-colour images."""
    tmp_path = tmp_path_factory.mktemp("images")
    for name in REAL_PHOTOS:
        shutil.copy(TEST_IMAGES / name, tmp_path / name)
    for name, (size, colour) in SOLID.items():
        Image.new("RGB", size, colour).save(tmp_path / name)
    return tmp_path


def load(loader: AfarensisImageLoader) -> list[Document]:
    with pytest.warns(ImageSkippedWarning, match="iss634.gif"):
        return loader.load()


@pytest.fixture(scope="module")
def store(llm: ChatAfarensis, folder: Path) -> InMemoryVectorStore:
    """The folder's descriptions, indexed."""
    return InMemoryVectorStore.from_documents(
        load(AfarensisImageLoader(folder, llm=llm)), BagOfWords()
    )


def test_loader_describes_each_image_over_http(llm: ChatAfarensis, folder: Path) -> None:
    documents = load(AfarensisImageLoader(folder, llm=llm, detail="low"))
    assert [Path(d.metadata["source"]).name for d in documents] == IMAGES
    by_name = {Path(d.metadata["source"]).name: d for d in documents}
    webp = by_name["flower.webp"]
    assert webp.metadata["format"] == "WEBP"
    assert (webp.metadata["width"], webp.metadata["height"]) == (480, 360)
    assert webp.metadata["image_tokens"] == 85
    assert webp.metadata["model"]
    assert "WEBP" in webp.page_content
    assert "480 x 360" in webp.page_content
    assert "red" in by_name["red.png"].page_content


async def test_async_loading_gives_the_same_documents(
    afarensis_server: LocalAfarensisServer, llm: ChatAfarensis, folder: Path
) -> None:
    async with httpx2.AsyncClient(timeout=TIMEOUT) as client:
        allm = model(afarensis_server, http_async_client=client)
        loader = AfarensisImageLoader(folder, llm=allm, max_concurrency=3)
        with pytest.warns(ImageSkippedWarning, match="iss634.gif"):
            documents = await loader.aload()
    assert documents == load(AfarensisImageLoader(folder, llm=llm))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("an image that is almost entirely red", "red.png"),
        ("a picture that is almost entirely blue", "blue.jpg"),
        ("a WEBP of 480 x 360 pixels", "flower.webp"),
        ("a JPEG of 300 x 225 pixels", "flower2.jpg"),
        ("mostly brown, with pink and purple", "flower2.jpg"),
    ],
)
def test_retrieval_finds_the_image_the_query_describes(
    store: InMemoryVectorStore, query: str, expected: str
) -> None:
    [best] = store.similarity_search(query, k=1)
    assert Path(best.metadata["source"]).name == expected
