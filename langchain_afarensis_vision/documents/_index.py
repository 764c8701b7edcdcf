"""The page index: documents in, each page described once, searchable with its file and page.

:class:`PageIndex` ties the rooms together. ``add`` lists the PDFs and image files it is given,
skips those unchanged since the last run (same size and time, or same SHA-256), renders the
others' pages (:mod:`._pages`), has every page image not yet described read by the model through
the corpus job (:func:`~..corpus.adescribe_images`: the shared rate limiter, dedupe by page
digest, resume after a kill, a token budget, a dry run), and writes pages and descriptions to
the database (:mod:`._store`). Files gone from a folder given again leave the index.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from langchain_afarensis_vision._api.contract import DEFAULT_MODEL, Detail
from langchain_afarensis_vision.chat_models import ChatAfarensis
from langchain_afarensis_vision.corpus import adescribe_images
from langchain_afarensis_vision.corpus._run import blocking
from langchain_afarensis_vision.corpus._store import ResultStore, job_key
from langchain_afarensis_vision.documents._answer import CitedAnswer, answer_message, cited_answer
from langchain_afarensis_vision.documents._files import documents, file_row
from langchain_afarensis_vision.documents._pages import PageImage, iter_pages
from langchain_afarensis_vision.documents._store import FileRow, PageHit, PageRow, Store
from langchain_afarensis_vision.documents._summary import IndexSummary
from langchain_afarensis_vision.documents._vectors import add_missing, fused, vector_ranking
from langchain_afarensis_vision.errors import InvalidDocumentError

__all__ = ["PAGE_PROMPT", "IndexSummary", "PageHit", "PageIndex"]

PAGE_PROMPT: Final = (
    "This is one page of a document, read for a search index. Write out all the text on it, "
    "word for word: headings, paragraphs, labels, table cells, captions. For each chart or "
    "table, give the numbers it shows with their labels and units. For each figure or photo, "
    "say in one sentence what it shows. Plain text, no commentary."
)
"""What each page image is asked (part of the description cache's key)."""
DETAIL: Final[Detail] = "high"
DEFAULT_MAX_TOKENS: Final = 1200
_STAGE_PAGES: Final = 256  # pages written to the database a transaction while a file renders
_NOTHING_FOUND: Final = "No page in the index matches the question."


class PageIndex:
    """Pages of PDFs and images, each described once, searchable, in one folder.

    Args:
        directory: The index folder (created if missing): ``index.sqlite``, the page images in
            ``pages/``, and the describe step's resumable log ``descriptions.jsonl``.
        llm: The model that reads each page and answers (``ChatAfarensis()`` if None, for the
            model the index was built with: key and URL from the environment).
        prompt: Asked about each page image (None: the index's, else :data:`PAGE_PROMPT`).
        max_tokens: Most tokens each page's description may take (None: the index's, else
            1,200). The model, prompt and max tokens are kept in the index, so a search or
            an answer later finds the descriptions they made.
        passwords: Passwords of encrypted PDFs, by path as given (or as indexed).
        workers: Processes rendering pages (None: one a core, at most 8; 0: on this thread).
        vector_store: A LangChain ``VectorStore`` (with its embeddings) to search beside the
            full-text index; the two rankings are fused (reciprocal rank fusion).

    Example:
        ```python
        index = PageIndex("index/", llm=model)
        index.add(["reports/"])
        for hit in index.search("revenue by region in 2023"):
            print(hit.file, hit.page, round(hit.score, 2))
        ```
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        llm: ChatAfarensis | None = None,
        prompt: str | None = None,
        max_tokens: int | None = None,
        passwords: Mapping[str, str] | None = None,
        workers: int | None = None,
        vector_store: Any = None,
    ) -> None:
        self.directory = Path(directory)
        self.store = Store(self.directory)
        kept = self.store.settings()
        self.llm = llm or ChatAfarensis(model=kept.get("model", DEFAULT_MODEL))
        self.prompt = prompt or kept.get("prompt", PAGE_PROMPT)
        self.max_tokens = max_tokens or int(kept.get("max_tokens", DEFAULT_MAX_TOKENS))
        self.passwords = dict(passwords or {})
        self.workers = workers
        self.vector_store = vector_store
        self.pages_dir = self.directory / "pages"
        self.log = self.directory / "descriptions.jsonl"
        self._dry_pages: list[PageRow] = []  # a dry run's pages, never written

    def __repr__(self) -> str:
        return f"PageIndex({os.fspath(self.directory)!r}, {self.store.count()} pages)"

    def close(self) -> None:
        """Close the database."""
        self.store.close()

    def __enter__(self) -> PageIndex:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def key(self, sha256: str) -> str:
        """The description cache's key for a page image: digest, prompt, model, detail."""
        return job_key(sha256, self.prompt, DETAIL, self.llm.model, self.max_tokens)

    # -- adding -------------------------------------------------------------------------------

    def add(self, paths: Iterable[str | os.PathLike[str]], **options: Any) -> IndexSummary:
        """Index the documents ``paths`` name (see :meth:`aadd` for the options).

        It runs an event loop of its own: in Jupyter or async code, ``await index.aadd(...)``.
        """
        return blocking(self.aadd)(paths, **options)

    async def aadd(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        dry_run: bool = False,
        budget_tokens: int | None = None,
        concurrency: int = 8,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        show_progress: bool | None = None,
    ) -> IndexSummary:
        """Index the PDFs and image files ``paths`` name: files, or folders (recursively).

        A file is named in the index relative to the folder given (a file given alone: by its
        own name). Unchanged files are skipped; changed ones are read again, and only their
        new page images are described; files gone from a folder given again are removed.

        Args:
            paths: Files and folders.
            dry_run: Render and count; describe nothing, change nothing in the index.
            budget_tokens: Stop describing before the billed tokens could pass this.
            concurrency: Most pages asked about at once.
            requests_per_minute: A cap on requests (None: learned from the API).
            tokens_per_minute: A cap on tokens (None: learned from the API).
            show_progress: Draw the describe step's progress bar (None: on a terminal).
        """
        summary = IndexSummary(dry_run=dry_run)
        if not dry_run:
            await asyncio.to_thread(self._recover)
            settings = {"model": self.llm.model, "prompt": self.prompt}
            self.store.keep_settings(settings | {"max_tokens": str(self.max_tokens)})
        found, roots = await asyncio.to_thread(documents, paths)
        summary.files = len(found)
        known = self.store.files()
        changed = []
        for name, (root, path) in found.items():
            row = await asyncio.to_thread(file_row, name, root, path, known.get(name))
            if row is None:
                summary.unchanged += 1
            elif (
                known.get(name) is not None
                and known[name].sha256 == row.sha256
                and not known[name].error
            ):
                summary.unchanged += 1
                if not dry_run:
                    self.store.touch(row)
            else:
                changed.append(row)
        gone = [n for n, row in known.items() if row.root in roots and n not in found]
        if not dry_run:
            summary.removed = self.store.remove(gone)
        await asyncio.to_thread(self._render, changed, summary)
        pending = self.store.undescribed(self.key)
        if dry_run:
            pending += self._dry_pages
        if pending:
            summary.corpus = await adescribe_images(
                [os.fspath(self.pages_dir / page.image) for page in pending if page.image],
                out=self.log,
                llm=self.llm,
                question=self.prompt,
                detail=DETAIL,
                max_tokens=self.max_tokens,
                concurrency=concurrency,
                requests_per_minute=requests_per_minute,
                tokens_per_minute=tokens_per_minute,
                budget_tokens=budget_tokens,
                dry_run=dry_run,
                show_progress=show_progress,
            )
        if not dry_run:
            summary.described = await asyncio.to_thread(self._ingest)
            await asyncio.to_thread(self.sync_vectors)
        summary.pages = self.store.count()
        return summary

    def _recover(self) -> None:
        """After a killed run: drop half-rendered files, keep every description it got."""
        self.store.discard_unfinished()
        self._ingest()

    def _ingest(self) -> int:
        if not self.log.exists():
            return 0
        log = ResultStore(self.log, read_only=True)
        try:
            records = (log.read(offset, key) for key, offset in log.done.items())
            return self.store.add_descriptions(
                (r for r in records if r.get("description") and not r.get("error")), self.key
            )
        finally:
            log.close()

    def _render(self, rows: Sequence[FileRow], summary: IndexSummary) -> None:
        self._dry_pages = []
        by_path = {row.path: row for row in rows}
        passwords = {row.path: word for row in rows if (word := self._password(row))}
        staged: list[tuple[Any, ...]] = []
        current: FileRow | None = None
        failed_file = False
        for path, page in iter_pages(
            list(by_path), self.pages_dir, workers=self.workers, passwords=passwords
        ):
            row = by_path[path]
            if row is not current:
                self._finish(current, staged, failed_file, summary)
                current, staged, failed_file = row, [], False
            if isinstance(page, InvalidDocumentError):
                summary.failed.append(_failure(row.file, page.page, page.message, path))
                failed_file = failed_file or page.page is None
                continue
            summary.rendered += 1
            if page.error is not None:
                summary.failed.append(_failure(row.file, page.page, page.error, path))
            staged.append(_page_values(page))
            if len(staged) >= _STAGE_PAGES and not summary.dry_run:
                self.store.stage(row.file, staged)
                staged = []
        self._finish(current, staged, failed_file, summary)

    def _finish(
        self,
        row: FileRow | None,
        staged: list[tuple[Any, ...]],
        failed_file: bool,
        summary: IndexSummary,
    ) -> None:
        if row is None:
            return
        if summary.dry_run:
            self._dry_pages += [PageRow(0, row.file, *values) for values in staged]
            summary.indexed += not failed_file
            return
        errors = [f["message"] for f in summary.failed if f["file"] == row.file]
        row = dataclasses.replace(row, error=errors[0] if errors else None)  # tried again later
        if failed_file:
            self.store.record_failure(row)
            return
        self.store.stage(row.file, staged)
        summary.indexed += 1
        pages = max((values[1] for values in staged), default=0)
        self.store.publish(dataclasses.replace(row, page_count=pages), self.key)

    def _password(self, row: FileRow) -> str | None:
        return self.passwords.get(row.file) or self.passwords.get(row.path)

    # -- reading ------------------------------------------------------------------------------

    def pages(self, file: str | None = None) -> list[PageHit]:
        """Every page in the index (of ``file``), in order."""
        return [self._hit(row) for row in self.store.pages(self.key, file)]

    def __len__(self) -> int:
        return self.store.count()

    def search(self, query: str, k: int = 5) -> list[PageHit]:
        """The ``k`` pages that best match ``query``, best first.

        Full-text (FTS5 ``bm25``) over each page's text layer and description; with a
        ``vector_store``, fused with its similarity ranking (reciprocal rank fusion, k=60).
        """
        depth = max(4 * k, 20)
        lexical = [self._hit(row) for row in self.store.search(query, depth, self.key)]
        if self.vector_store is None:
            return lexical[:k]
        vector = vector_ranking(self.vector_store, query, depth, self.pages())
        return fused(lexical, vector)[:k]

    def sync_vectors(self) -> int:
        """Add the pages the ``vector_store`` lacks (by id); how many were added."""
        return 0 if self.vector_store is None else add_missing(self.vector_store, self.pages())

    def _hit(self, row: PageRow) -> PageHit:
        return PageHit(
            row.file,
            row.page,
            row.page_count,
            row.score,
            row.sha256,
            self.pages_dir / row.image if row.image else None,
            row.text,
            row.description,
            bool(row.has_text_layer),
        )

    def ask(self, question: str, k: int = 4, *, max_image_tokens: int = 8_000) -> CitedAnswer:
        """Answer ``question`` from the ``k`` best pages, citing them by file and page.

        The pages' images (best first, within ``max_image_tokens``: the image budget's plan)
        and text layers go to the model with the question; each citation of the answer is a
        page that was sent (see :class:`~._answer.CitedAnswer`).
        """
        message, sent = answer_message(question, self.search(question, k), max_image_tokens)
        if not sent:
            return cited_answer(question, _NOTHING_FOUND, [])
        reply = self.llm.invoke([message])
        return cited_answer(question, reply.text, sent, reply.usage_metadata)

    async def aask(
        self, question: str, k: int = 4, *, max_image_tokens: int = 8_000
    ) -> CitedAnswer:
        """:meth:`ask`, on the caller's event loop."""
        hits = await asyncio.to_thread(self.search, question, k)
        message, sent = answer_message(question, hits, max_image_tokens)
        if not sent:
            return cited_answer(question, _NOTHING_FOUND, [])
        reply = await self.llm.ainvoke([message])
        return cited_answer(question, reply.text, sent, reply.usage_metadata)

    def as_retriever(self, k: int = 4) -> Any:
        """A LangChain retriever over this index (:class:`~.PageRetriever`)."""
        from langchain_afarensis_vision.documents._retriever import PageRetriever

        return PageRetriever(index=self, k=k)


def _page_values(page: PageImage) -> tuple[Any, ...]:
    image = f"{page.sha256}{page.suffix}" if page.sha256 else None
    return (
        page.page,
        page.page_count,
        page.sha256,
        image,
        page.width,
        page.height,
        int(page.has_text_layer),
        page.text,
        page.error,
    )


def _failure(file: str, page: int | None, message: str, path: str) -> dict[str, Any]:
    return {"file": file, "page": page, "message": message.replace(path, file)}
