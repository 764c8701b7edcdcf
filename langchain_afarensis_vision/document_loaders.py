"""``AfarensisImageLoader``: one LangChain ``Document`` per image, described by the model."""

from __future__ import annotations

import asyncio
import os
import warnings
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from contextlib import aclosing
from typing import Any, Final, Literal, TypeAlias

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage

from langchain_afarensis_vision._api.contract import Detail, is_fetched_url
from langchain_afarensis_vision._progress import Progress
from langchain_afarensis_vision._sources.listing import (
    IMAGE_SUFFIXES,
    NoImagesFoundWarning,
    PathLike,
    image_files,
    iter_image_sources,
)
from langchain_afarensis_vision.chat_models import ChatAfarensis
from langchain_afarensis_vision.chat_models._messages import (
    DEFAULT_QUESTION,
    ImageUrl,
    question_message,
)
from langchain_afarensis_vision.errors import (
    EVERY_REQUEST_FAILS,
    AfarensisError,
    InvalidImageError,
    checked_detail,
)
from langchain_afarensis_vision.images import PreparedImage, prepare_image, unknown_facts

__all__ = [
    "IMAGE_SUFFIXES",
    "AfarensisImageLoader",
    "ImageSkippedWarning",
    "NoImagesFoundWarning",
    "image_files",
    "iter_image_sources",
]

OnError: TypeAlias = Literal["warn", "raise", "skip"]

# Per-image failures; API errors arrive here after the client's own retries.
_SKIPPABLE = (AfarensisError, OSError)
_DEPRECATED: Final = {"bytes_sent": "bytes"}
"""Old metadata names, kept beside the new ones for one release (removed in the next)."""
_LOOKAHEAD: Final = 2  # alazy_load's window of tasks, in multiples of max_concurrency


class ImageSkippedWarning(UserWarning):
    """An image the loader skipped: ``source`` names the file, ``error`` says why."""

    def __init__(self, source: str, error: BaseException) -> None:
        code = f" ({error.code})" if isinstance(error, InvalidImageError) else ""
        super().__init__(f"skipped {source}: {type(error).__name__}{code}: {error}")
        self.source = source
        self.error = error


class AfarensisImageLoader(BaseLoader):
    """Load images as ``Document`` objects whose text is the model's description of each.

    ``paths`` takes files, globs (``**`` recurses), ``@list.txt`` files and directories
    (image files by suffix, sorted by name, a directory's own files before its
    subdirectories', which come with ``recursive=True``; hidden files ignored), and ``http(s)``
    URLs, one or a list (:func:`iter_image_sources`). Each image goes through
    :func:`~.images.prepare_image` and is sent with ``question`` (a URL is sent as it is, for
    the API to fetch); the answer becomes ``page_content``. Metadata: ``source``, the image's
    facts (:data:`~.images.FACTS`: ``format``, ``source_width``... ``width``, ``bytes``,
    ``image_tokens``), and ``model`` (as the API reports it); for a URL only ``source``,
    ``detail``, ``model`` and ``image_tokens`` (as the API reports it, else None) are known,
    the rest is None. ``bytes_sent`` (deprecated: ``bytes``) is kept for one release. Animated
    images are refused unless the model has ``image_first_frame=True``.

    ``lazy_load`` describes one image at a time. ``alazy_load`` prepares and sends at most
    ``max_concurrency`` images at once and yields in input order, from a sliding window of
    ``2 * max_concurrency`` tasks: memory holds at most ``max_concurrency`` images and the
    window's finished descriptions, however many files there are.

    A broken or unreadable image, or an API error left after the client's retries, is handled
    by ``on_error``: ``"warn"`` (an :class:`ImageSkippedWarning`, then the next image),
    ``"skip"`` (silently) or ``"raise"`` (after the documents before it). Authentication,
    permission and not-found errors, and a missing API key, always raise: every image would
    fail the same way.

    Example:
        ```python
        from langchain_afarensis_vision import ChatAfarensis
        from langchain_afarensis_vision.document_loaders import AfarensisImageLoader

        loader = AfarensisImageLoader("photos/**/*.jpg", llm=ChatAfarensis(), detail="low")
        for doc in loader.lazy_load():
            print(doc.metadata["source"], doc.page_content)
        ```
    """

    def __init__(
        self,
        paths: PathLike | Sequence[PathLike],
        *,
        llm: ChatAfarensis | None = None,
        question: str = DEFAULT_QUESTION,
        detail: Detail = "auto",
        recursive: bool = False,
        max_concurrency: int = 8,
        on_error: OnError = "warn",
        show_progress: bool | None = None,
    ) -> None:
        """Configure the loader; nothing is read until loading starts.

        Args:
            paths: A file, glob or directory, or a sequence of them.
            llm: The model; ``ChatAfarensis()`` (configured from the environment) if None.
            question: The prompt sent with each image.
            detail: ``low``, ``high`` or ``auto``.
            recursive: Scan directories' subdirectories too.
            max_concurrency: Most images prepared and in flight at once in ``alazy_load``.
            on_error: ``warn``, ``raise`` or ``skip`` for an image that cannot be described.
            show_progress: Draw a progress bar on stderr; None draws only on a terminal.
        """
        if max_concurrency < 1:
            msg = f"max_concurrency must be at least 1; got {max_concurrency}"
            raise ValueError(msg)
        if on_error not in ("warn", "raise", "skip"):
            msg = f"on_error must be 'warn', 'raise' or 'skip'; got {on_error!r}"
            raise ValueError(msg)
        self.paths: list[PathLike] = (
            [paths] if isinstance(paths, str | os.PathLike) else list(paths)
        )
        self.llm = ChatAfarensis() if llm is None else llm
        self.question = question
        self.detail = checked_detail(detail)
        self.recursive = recursive
        self.max_concurrency = max_concurrency
        self.on_error: OnError = on_error
        self.show_progress = show_progress

    def lazy_load(self) -> Iterator[Document]:
        """Describe the images one at a time, yielding each ``Document`` as it is ready."""
        sources = image_files(self.paths, self.recursive)  # names only: nothing is read here
        with self._progress(len(sources)) as progress:
            for source in sources:
                try:
                    document = self._describe(source)
                except _SKIPPABLE as error:
                    self._failed(source, error)
                    continue
                finally:
                    progress.advance()
                yield document

    async def alazy_load(self) -> AsyncIterator[Document]:
        """Describe up to ``max_concurrency`` images at once, yielding in input order."""
        sources = image_files(self.paths, self.recursive)  # names only: nothing is read here
        with self._progress(len(sources)) as progress:
            async with aclosing(self._in_order(sources)) as results:
                async for document in results:
                    progress.advance()
                    if document is not None:
                        yield document

    async def _in_order(self, sources: list[str]) -> AsyncGenerator[Document | None, None]:
        """Results in input order from a sliding window of tasks, ``max_concurrency`` running.

        The window holds twice as many tasks as may run, so a slow image at its head does not
        idle the others; waiting tasks have read nothing yet.
        """
        slots = asyncio.Semaphore(self.max_concurrency)
        window: deque[asyncio.Task[Document | None]] = deque()
        try:
            for source in sources:
                window.append(asyncio.create_task(self._adescribe(source, slots)))
                if len(window) == _LOOKAHEAD * self.max_concurrency:
                    yield await window.popleft()
            while window:
                yield await window.popleft()
        finally:
            await _cancel(window)

    # -- one image: prepare -> ask -> Document (the only step that differs is the await) ------

    def _describe(self, source: str) -> Document:
        prepared = self._prepare(source)
        return self._document(source, prepared, self.llm.invoke(self._messages(source, prepared)))

    async def _adescribe(self, source: str, slots: asyncio.Semaphore) -> Document | None:
        try:
            async with slots:  # the image is read and prepared only once it may be sent
                prepared = await asyncio.to_thread(self._prepare, source)
                reply = await self.llm.ainvoke(self._messages(source, prepared))
        except _SKIPPABLE as error:
            self._failed(source, error)
            return None
        return self._document(source, prepared, reply)

    def _prepare(self, source: str) -> PreparedImage | None:
        """The prepared image, or None for an http(s) URL (the API fetches it)."""
        if is_fetched_url(source):
            return None
        return prepare_image(source, self.detail, first_frame=self.llm.image_first_frame)

    def _messages(self, source: str, prepared: PreparedImage | None) -> list[HumanMessage]:
        image = ImageUrl(source, self.detail) if prepared is None else prepared
        return [question_message(self.question, image)]

    def _document(self, source: str, prepared: PreparedImage | None, reply: AIMessage) -> Document:
        model = reply.response_metadata.get("model_name") or self.llm.model
        if prepared is None:  # a URL: only what the API reports is known
            usage = reply.usage_metadata
            details: dict[str, Any] = dict(usage.get("input_token_details") or {}) if usage else {}
            facts = unknown_facts(self.detail, details.get("image"))
        else:
            facts = prepared.facts()
        old = {name: facts[new] for name, new in _DEPRECATED.items()}
        metadata = {"source": source, **facts, **old, "model": model}
        return Document(page_content=reply.text, metadata=metadata)

    def _failed(self, source: str, error: BaseException) -> None:
        """Apply ``on_error`` to an image that could not be described."""
        if self.on_error == "raise" or isinstance(error, EVERY_REQUEST_FAILS):
            error.add_note(f"while loading image {source}")
            raise error
        if self.on_error == "warn":
            warnings.warn(ImageSkippedWarning(source, error), stacklevel=2)

    def _progress(self, total: int) -> Progress:
        return Progress(total, "Describing images", enabled=self.show_progress)


async def _cancel(tasks: deque[asyncio.Task[Document | None]]) -> None:
    """Cancel what is left in the window (after an error or an early exit) and reap it."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
