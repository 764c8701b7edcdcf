"""Documents in, cited answers out: pages of PDFs and images, each described once.

Pages are indexed, retrieved, and answered from with citations to file and page.
Rooms: ``_pages`` (PDF pages rendered at the size the model sees, and their text layers),
``_terms`` (text folded for search, CJK as character pairs), ``_store`` (the SQLite database,
FTS5), ``_index`` (:class:`PageIndex`: add, search), ``_retriever`` (:class:`PageRetriever`),
``_answer`` (:class:`CitedAnswer`). Needs the ``documents`` extra (``pypdfium2``) for PDFs.
"""

from langchain_afarensis_vision.documents._answer import CitedAnswer
from langchain_afarensis_vision.documents._index import PAGE_PROMPT, PageIndex
from langchain_afarensis_vision.documents._retriever import PageRetriever
from langchain_afarensis_vision.documents._store import PageHit
from langchain_afarensis_vision.documents._summary import IndexSummary

__all__ = ["PAGE_PROMPT", "CitedAnswer", "IndexSummary", "PageHit", "PageIndex", "PageRetriever"]
