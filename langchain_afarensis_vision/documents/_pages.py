"""Pages from documents: each PDF page (or image file) as the image the model sees, and its text.

A PDF page is rendered by PDFium (``pypdfium2``) straight at the size the model sees it at
``detail`` high (the API's own rule, :func:`~.._api.contract.effective_size`: fitted in 2048 x
2048, the shorter side brought to 768), never rendered large and shrunk; its text layer is read
beside it (a scan has none). An image file is one page, prepared by
:func:`~..images.prepare_image` as any image is. Each page image is written once to the index's
``pages/`` folder under its SHA-256, the page's digest: the description cache, the dedupe and the
answer call all go by it.

Rendering runs in worker processes, a few pages a task, with a cap on each worker's address space
(:data:`WORKER_MEMORY`): a hostile PDF (a 1 GB stream, a page tree loop, a huge page) ends as an
:class:`~..errors.InvalidDocumentError` naming the file and page, never as the caller's memory or
a crash, and the other files go on. Pages stream: however long a PDF, only the pages in flight
are held.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Final, TypeVar

from langchain_afarensis_vision._api.contract import effective_size
from langchain_afarensis_vision._sources.paths import IMAGE_SUFFIXES
from langchain_afarensis_vision.errors import InvalidDocumentError, InvalidImageError
from langchain_afarensis_vision.images import prepare_image

__all__ = [
    "DOCUMENT_SUFFIXES",
    "MAX_TEXT_CHARS",
    "PageImage",
    "iter_pages",
    "page_pixels",
    "render_pages",
]

PDF_SUFFIX: Final = ".pdf"
DOCUMENT_SUFFIXES: Final = frozenset({PDF_SUFFIX, *IMAGE_SUFFIXES})
"""What a folder scan indexes: PDFs and image files (any case)."""
PAGES_PER_TASK: Final = 8
MAX_TEXT_CHARS: Final = 100_000
"""Most characters of a page's text layer kept (a page holds a few thousand)."""
WORKER_MEMORY: Final = 600 * 1024 * 1024
"""Address space a rendering worker may take (a hostile stream fails there, not in the caller)."""
PAGE_SECONDS: Final = 60
"""Longest a page may take to render before its worker is stopped and the page fails."""
_RENDER_SIDE: Final = 2048  # the longer side before the API's own fitting (never larger)
_T = TypeVar("_T")
_LOST: Final = (BrokenProcessPool, TimeoutError, CancelledError)  # a task that gave no answer
_NO_WORKERS: Final = (
    "The processes that render pages could not start. Run from a script, they import that "
    'script again: put the code that indexes under `if __name__ == "__main__":` (workers=0 '
    "renders on this thread instead)."
)


@dataclass(frozen=True, slots=True)
class PageImage:
    """One page as a worker rendered it (``error``: why it could not be)."""

    page: int
    page_count: int
    sha256: str | None
    suffix: str
    width: int
    height: int
    text: str
    has_text_layer: bool
    error: str | None = None


def page_pixels(width_pt: float, height_pt: float) -> tuple[int, int]:
    """The pixel size a page of ``width_pt`` x ``height_pt`` points is rendered at.

    The page's shape fitted in 2048 x 2048, then the API's ``high`` rule: what the model sees,
    so the image is sent as it is rendered (a US Letter page: 768 x 993, about 90 dpi).
    """
    longest = max(width_pt, height_pt, 1e-6)
    width = max(1, round(width_pt * _RENDER_SIDE / longest))
    height = max(1, round(height_pt * _RENDER_SIDE / longest))
    return effective_size(width, height, "high")


def iter_pages(
    files: Sequence[str],
    pages_dir: Path,
    *,
    workers: int | None = None,
    passwords: Mapping[str, str] | None = None,
) -> Iterator[tuple[str, PageImage | InvalidDocumentError]]:
    """``(file, page)`` for every page of ``files``, in order; a file that fails gives its error.

    Pages render on ``workers`` processes (None: one a core, at most 8; 0: here, on this
    thread), a few tasks a worker queued ahead. A worker that dies (its memory cap, a crash)
    fails only the page it was rendering: its task's pages are tried again one by one on a
    fresh pool, and the files after it go on.
    """
    pages_dir.mkdir(parents=True, exist_ok=True)
    with _Renderer(workers) as renderer:
        queue: deque[_Task] = deque()
        tasks = _tasks(files, pages_dir, passwords or {}, renderer)
        for task in tasks:
            queue.append(task)
            while len(queue) > renderer.ahead or (queue and queue[0].done()):
                yield from queue.popleft().pages(renderer)
        while queue:
            yield from queue.popleft().pages(renderer)


@dataclass
class _Task:
    """Some pages of one file, being rendered (or the file's error, found when counting)."""

    file: str
    start: int
    count: int
    args: tuple[Any, ...]
    future: Future[list[PageImage]] | None = None
    error: InvalidDocumentError | None = None

    def done(self) -> bool:
        return self.future is None or self.future.done()

    def pages(self, renderer: _Renderer) -> Iterator[tuple[str, Any]]:
        if self.error is not None:
            yield self.file, self.error
            return
        assert self.future is not None
        try:
            pages = self.future.result(timeout=PAGE_SECONDS * max(1, self.count))
        except InvalidDocumentError as error:
            yield self.file, error
        except _LOST:  # a worker died or hangs (or a restart dropped it): page by page
            renderer.restart()
            for index in range(self.start, self.start + self.count):
                yield from self._alone(renderer, index)
        else:
            yield from ((self.file, page) for page in pages)

    def _alone(self, renderer: _Renderer, index: int) -> Iterator[tuple[str, Any]]:
        file, _, _, pages_dir, password = self.args
        try:
            yield from ((file, page) for page in renderer.run(file, index, 1, pages_dir, password))
        except InvalidDocumentError as error:
            yield file, error
        except _LOST:
            renderer.restart()
            reason = (
                f"took more than {WORKER_MEMORY // 2**20:,} MiB or {PAGE_SECONDS} s, or crashed"
            )
            message = f"{file}, page {index + 1}: rendering it {reason}"
            yield file, InvalidDocumentError(message, source=file, page=index + 1)


def _tasks(
    files: Sequence[str], pages_dir: Path, passwords: Mapping[str, str], renderer: _Renderer
) -> Iterator[_Task]:
    for file in files:
        password = passwords.get(file)
        try:
            total = renderer.run_count(file, password)
        except InvalidDocumentError as error:
            yield _Task(file, 0, 0, (), error=error)
            continue
        for start in range(0, total, PAGES_PER_TASK):
            count = min(PAGES_PER_TASK, total - start)
            args = (file, start, count, str(pages_dir), password)
            yield _Task(file, start, count, args, renderer.submit(*args))


class _Renderer:
    """The rendering pool (replaced when a worker dies), or this thread when ``workers`` is 0."""

    def __init__(self, workers: int | None) -> None:
        self.workers = max(1, min(os.cpu_count() or 1, 8)) if workers is None else workers
        self.ahead = 2 * max(1, self.workers)
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> _Renderer:
        return self

    def __exit__(self, *_: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def submit(self, *args: Any) -> Future[list[PageImage]]:
        return self._submit(render_pages, *args)

    def run(self, *args: Any) -> list[PageImage]:
        return self.submit(*args).result(timeout=PAGE_SECONDS)

    def run_count(self, file: str, password: str | None) -> int:
        if Path(file).suffix.lower() != PDF_SUFFIX:
            return 1
        for attempt in range(2):  # a worker killed by a page before: once more, on a new pool
            try:
                return self._submit(page_count, file, password).result(timeout=PAGE_SECONDS)
            except (BrokenProcessPool, TimeoutError):
                self.restart()
                if attempt == 0:
                    continue
        msg = f"{file}: counting its pages took more memory or time than allowed, or crashed"
        raise InvalidDocumentError(msg, source=file)

    def _submit(self, function: Callable[..., _T], *args: Any) -> Future[_T]:
        if self.workers == 0:  # here, now: a finished future
            future: Future[_T] = Future()
            try:
                future.set_result(function(*args))
            except InvalidDocumentError as error:
                future.set_exception(error)
            return future
        if self.pool is None:
            context = get_context("spawn")  # no fork of a process that may hold threads
            pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_limit_memory)
            try:
                pool.submit(os.getpid).result()
            except BrokenProcessPool as error:
                pool.shutdown(cancel_futures=True)
                raise BrokenProcessPool(_NO_WORKERS) from error
            self.pool = pool
        return self.pool.submit(function, *args)

    def restart(self) -> None:
        """A fresh pool for what follows: the workers of this one are killed (one may hang)."""
        if self.pool is not None:
            # The executor has no public way to stop a running task: its processes are killed.
            for process in list(getattr(self.pool, "_processes", {}).values()):
                process.kill()
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def page_count(file: str, password: str | None = None) -> int:
    """How many pages the PDF ``file`` has (a worker function), or its typed error."""
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(file, password=password)
    except pdfium.PdfiumError as error:
        raise InvalidDocumentError(_open_failure(file, error, password), source=file) from None
    try:
        return len(document)
    finally:
        document.close()


def render_pages(
    file: str, start: int, count: int, pages_dir: str, password: str | None = None
) -> list[PageImage]:
    """Pages ``start`` to ``start + count`` (0-based) of ``file``, written to ``pages_dir``.

    A worker function: PDFium is opened here, in the worker. An image file is page 1.
    """
    if Path(file).suffix.lower() != PDF_SUFFIX:
        return [_image_page(file, Path(pages_dir))] if start == 0 else []
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(file, password=password)
    except pdfium.PdfiumError as error:
        raise InvalidDocumentError(_open_failure(file, error, password), source=file) from None
    try:
        total = len(document)
        return [
            _pdf_page(document, index, total, Path(pages_dir))
            for index in range(start, min(start + count, total))
        ]
    finally:
        document.close()


def _open_failure(file: str, error: Exception, password: str | None) -> str:
    code = getattr(error, "err_code", None)
    if code == 4:  # FPDF_ERR_PASSWORD
        if password is None:
            return f"{file} is encrypted: give its password (passwords={{{file!r}: ...}})"
        return f"{file}: the password given is not this PDF's"
    if code == 6:  # FPDF_ERR_SECURITY
        return f"{file} uses a security handler PDFium does not support; save it unprotected"
    reason = {2: "not found", 3: "not a PDF or damaged"}.get(code or 0, str(error))
    return f"{file} cannot be read as a PDF ({reason})"


def _pdf_page(document: Any, index: int, total: int, pages_dir: Path) -> PageImage:
    import pypdfium2 as pdfium

    try:
        page = document[index]
    except (pdfium.PdfiumError, IndexError) as error:
        return _failed(index, total, f"page {index + 1} cannot be loaded ({error})")
    try:
        width_pt, height_pt = page.get_size()
        size = page_pixels(width_pt, height_pt)
        bitmap = page.render(scale=size[0] / max(width_pt, 1e-6), may_draw_forms=False)
        image = bitmap.to_pil().convert("RGB")
        if image.size != size:  # rounding inside PDFium: the size the model sees, exactly
            image = image.crop((0, 0, *size)) if _covers(image.size, size) else image
        textpage = page.get_textpage()
        text = textpage.get_text_bounded()[:MAX_TEXT_CHARS]
        textpage.close()
    except (pdfium.PdfiumError, ValueError, OSError) as error:
        return _failed(index, total, f"page {index + 1} cannot be rendered ({error})")
    finally:
        page.close()
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return _written(buffer.getvalue(), ".png", pages_dir, index, total, image.size, text)


def _covers(have: tuple[int, int], want: tuple[int, int]) -> bool:
    return have[0] >= want[0] and have[1] >= want[1]


def _image_page(file: str, pages_dir: Path) -> PageImage:
    try:
        prepared = prepare_image(file, "high")
    except (InvalidImageError, OSError) as error:
        raise InvalidDocumentError(f"{file}: {error}", source=file, page=1) from None
    suffix = "." + prepared.mime_type.split("/")[1].replace("jpeg", "jpg")
    return _written(prepared.data, suffix, pages_dir, 0, 1, prepared.size, "")


def _written(
    data: bytes,
    suffix: str,
    pages_dir: Path,
    index: int,
    total: int,
    size: tuple[int, int],
    text: str,
) -> PageImage:
    sha256 = hashlib.sha256(data).hexdigest()
    path = pages_dir / f"{sha256}{suffix}"
    if not path.exists():  # written whole, then renamed: a reader never sees half a page
        pages_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.write_bytes(data)
        os.replace(partial, path)
    has_text = bool(text.strip())
    return PageImage(index + 1, total, sha256, suffix, *size, text.strip(), has_text)


def _failed(index: int, total: int, error: str) -> PageImage:
    return PageImage(index + 1, total, None, "", 0, 0, "", False, error)


def _limit_memory() -> None:
    """A rendering worker's start: cap its address space (POSIX), so a hostile stream fails."""
    if sys.platform != "win32":
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY, WORKER_MEMORY))
