"""The vector side of a page index: a user's LangChain ``VectorStore``, fused with full text.

Nothing here needs an embedding model: a user who passes a ``VectorStore`` (with its
``Embeddings``) gets each page's text layer and description added under a page id (file, page
and the page image's digest, so a changed page is a new id), and its similarity ranking fused
with the full-text ranking by reciprocal rank fusion. An id the index no longer holds is
ignored when searching.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document

from langchain_afarensis_vision.documents._store import PageHit

__all__ = ["add_missing", "fused", "page_id", "vector_ranking"]


def page_id(hit: PageHit) -> str:
    """The id of a page in the vector store: file, page and image digest."""
    return f"{hit.file}#page={hit.page}@{(hit.sha256 or '')[:16]}"


def add_missing(store: Any, pages: Sequence[PageHit]) -> int:
    """Add to ``store`` the ``pages`` it does not hold (by id); how many were added."""
    by_id = {page_id(hit): hit for hit in pages}
    have: set[str] = set()
    with contextlib.suppress(NotImplementedError):  # a store that cannot say: add them all
        have = {str(document.id) for document in store.get_by_ids(list(by_id))}
    missing = [(key, hit) for key, hit in by_id.items() if key not in have]
    if missing:
        documents = [
            Document(id=key, page_content=_searched(hit), metadata={"page_id": key})
            for key, hit in missing
        ]
        store.add_documents(documents, ids=[key for key, _ in missing])
    return len(missing)


def vector_ranking(store: Any, query: str, depth: int, pages: Sequence[PageHit]) -> list[PageHit]:
    """The pages ``store`` finds most similar to ``query``, best first (known pages only)."""
    by_id = {page_id(hit): hit for hit in pages}
    found = (
        by_id.get(str(d.metadata.get("page_id"))) for d in store.similarity_search(query, k=depth)
    )
    return [hit for hit in found if hit is not None]


def fused(*rankings: Sequence[PageHit], k: int = 60) -> list[PageHit]:
    """Reciprocal rank fusion: each page scores the sum of ``1 / (k + rank)`` over rankings."""
    scores: dict[tuple[str, int], float] = {}
    hits: dict[tuple[str, int], PageHit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, 1):
            where = (hit.file, hit.page)
            scores[where] = scores.get(where, 0.0) + 1.0 / (k + rank)
            hits.setdefault(where, hit)
    order = sorted(scores, key=lambda where: -scores[where])
    return [dataclasses.replace(hits[where], score=scores[where]) for where in order]


def _searched(hit: PageHit) -> str:
    return "\n\n".join(part for part in (hit.text, hit.description or "") if part)
