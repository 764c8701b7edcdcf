"""Documents in, cited answers out, replayed from ``cassettes/test_cassettes_documents/``.

The same code path as against the real API: only the base URL and key differ. Recorded from the
local server by ``make cassettes`` (or from a real endpoint when ``AFARENSIS_API_KEY`` and
``AFARENSIS_BASE_URL`` are set); replayed offline with sockets disabled. Each request's page
images are stored as digests, so a replay matches only the same rendered pages (the test extra
pins pypdfium2 for that).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest

from langchain_afarensis_vision import ChatAfarensis
from langchain_afarensis_vision.documents import PageIndex
from tests import _cassettes

pytestmark = [pytest.mark.vcr]
if _cassettes.RECORDING:
    pytestmark.append(pytest.mark.enable_socket)

REPORT = Path(str(files("langchain_afarensis_vision") / "samples" / "report.pdf"))


@pytest.fixture
def model() -> Iterator[ChatAfarensis]:
    with _cassettes.endpoint() as where:
        yield ChatAfarensis(base_url=where.base_url, api_key=where.api_key, max_retries=0)


def test_index_then_ask(model: ChatAfarensis, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(REPORT, docs / "report.pdf")
    with PageIndex(tmp_path / "index", llm=model, workers=0) as index:
        summary = index.add([docs], concurrency=1)
        assert (summary.pages, summary.requests, summary.failed) == (3, 3, [])
        assert index.add([docs]).requests == 0
        result = index.ask("How many engineers are there?", k=2)
    sent = [(hit.file, hit.page) for hit in result.pages]
    assert ("report.pdf", 1) in sent
    assert set(result.citations) <= set(sent)
    assert result.dropped == []
    assert result.answer
