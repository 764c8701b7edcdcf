"""A LangChain retriever over a :class:`~._index.PageIndex`: page ``Document``s with citations.

Each ``Document`` is one page: its text layer and the model's description as content, and in
``metadata`` where it is (``source``, ``page``, 1-based, ``page_count``), how well it matched
(``score``), the page image the model reads (``image``, a path; ``sha256``, its digest) and
whether the page has a text layer. ``citation`` is ``{"file", "page"}``: langchain-core's
standard ``Citation`` block has no page field, so the page travels here.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from langchain_afarensis_vision.documents._store import PageHit

__all__ = ["PageRetriever", "page_document"]


class PageRetriever(BaseRetriever):
    """The ``k`` best pages of a page index for a query, as ``Document``s.

    Example:
        ```python
        retriever = PageIndex("index/", llm=model).as_retriever(k=4)
        for page in retriever.invoke("revenue by region"):
            print(page.metadata["source"], page.metadata["page"])
        ```
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Any
    """The :class:`~._index.PageIndex` searched."""
    k: int = 4
    """How many pages to return."""

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [page_document(hit) for hit in self.index.search(query, k=self.k)]


def page_document(hit: PageHit) -> Document:
    """A found page as a LangChain ``Document``."""
    content = "\n\n".join(part for part in (hit.text, hit.description or "") if part)
    return Document(
        page_content=content,
        metadata={
            "source": hit.file,
            "page": hit.page,
            "page_count": hit.page_count,
            "score": hit.score,
            "sha256": hit.sha256,
            "image": str(hit.image) if hit.image else None,
            "has_text_layer": hit.has_text_layer,
            "described": hit.description is not None,
            "citation": hit.citation(),
        },
    )
