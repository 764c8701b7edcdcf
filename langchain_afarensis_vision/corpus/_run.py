"""The corpus job: describe a whole collection of images within the rate limit, resumably.

:func:`describe_images` streams its sources (files, folders, globs, URLs, ``@list.txt``),
prepares each image off the event loop (on a process pool sized to the cores by default),
sends up to ``concurrency`` requests at once through one
:class:`~.rate_limiters.AfarensisRateLimiter`, and appends one JSON line per image to ``out`` as
each finishes (see :mod:`.corpus._store`). Running it again skips what ``out`` already holds and
retries what failed; identical images are sent once; ``budget_tokens`` stops it before the
tokens charged to ``out`` over all its runs could pass a cap (:mod:`.corpus._budget`);
``dry_run`` prepares everything and sends nothing.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import Executor, ProcessPoolExecutor
from multiprocessing import get_context, parent_process
from typing import Any, Final, ParamSpec, TypeVar

from langchain_afarensis_vision._api.contract import Detail
from langchain_afarensis_vision._progress import Progress
from langchain_afarensis_vision._sources.listing import NoImagesFoundWarning
from langchain_afarensis_vision.chat_models import ChatAfarensis
from langchain_afarensis_vision.chat_models._messages import DEFAULT_QUESTION
from langchain_afarensis_vision.corpus._job import Job, rate_limited
from langchain_afarensis_vision.corpus._store import ResultStore, iter_sources
from langchain_afarensis_vision.corpus._summary import CorpusSummary, estimate_seconds
from langchain_afarensis_vision.errors import checked_detail
from langchain_afarensis_vision.rate_limiters import AfarensisRateLimiter

__all__ = ["CorpusSummary", "adescribe_images", "describe_images"]

DEFAULT_MAX_TOKENS: Final = 300
P = ParamSpec("P")
R = TypeVar("R")


async def adescribe_images(
    sources: Iterable[str | os.PathLike[str]],
    *,
    out: str | os.PathLike[str],
    llm: ChatAfarensis | None = None,
    question: str = DEFAULT_QUESTION,
    detail: Detail = "auto",
    max_tokens: int = DEFAULT_MAX_TOKENS,
    concurrency: int = 8,
    requests_per_minute: int | None = None,
    tokens_per_minute: int | None = None,
    budget_tokens: int | None = None,
    dry_run: bool = False,
    workers: int | None = None,
    show_progress: bool | None = None,
    on_progress: Callable[[CorpusSummary], object] | None = None,
) -> CorpusSummary:
    """Describe every image the sources name into ``out`` (JSONL), resumably (async).

    Args:
        sources: Files, folders (recursive), globs, ``http(s)`` URLs, or ``@list.txt``.
        out: The JSONL file: one line per image, appended as each finishes; what it already
            holds is skipped, its failed lines tried again.
        llm: The model (``ChatAfarensis()`` if None); used as a copy with the job's limiter
            and ``max_tokens``.
        question: Asked about each image.
        detail: ``low``, ``high`` or ``auto``.
        max_tokens: Most tokens each answer may take.
        concurrency: Most images in flight (read, prepared or asked about) at once.
        requests_per_minute: A cap on requests (None: learned from the API).
        tokens_per_minute: A cap on tokens (None: learned from the API).
        budget_tokens: Stop before the tokens charged to ``out`` over all its runs could pass
            this: each request is charged its estimate before it is sent, corrected to its
            usage when answered; one that got no answer stays charged (the API may have
            billed it). The count is kept in ``<out>.state`` beside ``out``.
        dry_run: Read and prepare every image, send nothing, write nothing.
        workers: Processes preparing images (None: one a core); 0 prepares on threads.
        show_progress: Draw a progress bar on stderr; None draws only on a terminal.
        on_progress: Called on the job's event loop after each image with the running
            summary (``seconds`` is the time so far): for a notebook's display or a log.
            It must return quickly; an exception from it stops the run.

    Returns:
        The :class:`CorpusSummary` (``exit_code`` 0 when every image was described).

    Example:
        ```python
        summary = await adescribe_images(["photos/"], out="out.jsonl", tokens_per_minute=20_000)
        print(summary.line())
        ```
    """
    _check(concurrency, max_tokens, budget_tokens, workers)
    llm = llm or ChatAfarensis()
    model = _with_limiter(llm, max_tokens, requests_per_minute, tokens_per_minute)
    options = {
        "question": question,
        "detail": checked_detail(detail),
        "max_tokens": max_tokens,
        "budget_tokens": budget_tokens,
        "dry_run": dry_run,
        "retries": llm.max_retries,  # the job retries, charging each attempt
    }
    total = _count(sources, show_progress)
    store = ResultStore(out, read_only=dry_run)
    executor = _executor(workers)
    started = time.monotonic()
    try:
        with Progress(total, "Captioning", enabled=show_progress) as progress:
            job = Job(model, store, executor, options, progress, on_progress)
            summary = await job.run(iter_sources(sources), concurrency)
    finally:
        store.close()
        await model.aclose()  # the client it made on this loop (an injected one is the caller's)
        if executor is not None:
            executor.shutdown(cancel_futures=True)
    summary.seconds = time.monotonic() - started
    summary.rate_limited = rate_limited(model)
    if dry_run:
        summary.estimated_seconds = estimate_seconds(
            summary, requests_per_minute, tokens_per_minute
        )
    return summary


def blocking(function: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """``function`` run to its end on an event loop of its own (an error where one is running)."""

    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop here: run one
            return asyncio.run(function(*args, **kwargs))
        msg = (
            f"{function.__name__.removeprefix('a')} runs an event loop of its own, and one is "
            f"already running here (Jupyter, or async code): use `await {function.__name__}(...)`"
        )
        raise RuntimeError(msg)

    return run


describe_images = blocking(adescribe_images)
describe_images.__name__ = describe_images.__qualname__ = "describe_images"
describe_images.__doc__ = """:func:`adescribe_images`, run to the end on an event loop of its own.

    Example:
        ```python
        summary = describe_images(["photos/"], out="captions.jsonl", tokens_per_minute=20_000)
        print(summary.line())
        ```
    """


def _check(concurrency: int, max_tokens: int, budget: int | None, workers: int | None) -> None:
    for name, value in (("concurrency", concurrency), ("max_tokens", max_tokens)):
        if value < 1:
            msg = f"{name} must be at least 1; got {value}"
            raise ValueError(msg)
    if budget is not None and budget < 1:
        msg = f"budget_tokens must be at least 1; got {budget}"
        raise ValueError(msg)
    if workers is not None and workers < 0:
        msg = f"workers must be 0 (threads) or more; got {workers}"
        raise ValueError(msg)


def _with_limiter(
    llm: ChatAfarensis, max_tokens: int, rpm: int | None, tpm: int | None
) -> ChatAfarensis:
    """A copy of ``llm`` with ``max_tokens`` and one limiter (its own, if no caps are given).

    It makes one attempt a call: the job retries as ``llm`` would, charging each attempt to
    the token budget (:mod:`.corpus._budget`).
    """
    limiter = llm.rate_limiter
    if not isinstance(limiter, AfarensisRateLimiter) or rpm is not None or tpm is not None:
        limiter = AfarensisRateLimiter(rpm, tpm, max_retry_after=llm.max_retry_after)
    update = {"rate_limiter": limiter, "max_tokens": max_tokens, "max_retries": 0}
    return llm.model_copy(update=update)


def _count(sources: Iterable[str | os.PathLike[str]], show: bool | None) -> int:
    """How many sources, for the bar: counted (names only) when a bar is drawn, else 0."""
    draw = sys.stderr.isatty() if show is None else show
    if not draw or not isinstance(sources, list | tuple):
        return 0
    with warnings.catch_warnings():  # said once, by the job itself
        warnings.simplefilter("ignore", NoImagesFoundWarning)
        return sum(1 for _ in iter_sources(sources))


def _executor(workers: int | None) -> Executor | None:
    """A process pool sized to the cores (None: the loop's threads when ``workers`` is 0)."""
    if workers == 0:
        return None
    context = get_context("forkserver")  # never fork a process that runs threads
    context.set_forkserver_preload(["langchain_afarensis_vision.images"])
    cores = workers or os.cpu_count() or 1
    return ProcessPoolExecutor(cores, context, initializer=_watch_parent)


def _watch_parent() -> None:
    """In a worker: exit the moment the job's process is gone, however it ended.

    A worker whose parent was killed waits on its task queue for good (the other workers hold
    the queue's pipe open), keeping the job's stdout and stderr open. Asking whether the
    parent's pid lives is not enough: a killed parent not yet reaped (``communicate()`` reads
    its pipes to the end first; a container whose first process reaps nothing) still has its
    pid. multiprocessing gives each child its parent's sentinel, a pipe whose other end only
    the parent holds: it is readable once the parent is gone, by SIGKILL too, reaped or not.
    """
    parent = parent_process()
    if parent is None:  # pragma: no cover - always set in a pool's worker
        return

    def watch() -> None:
        parent.join()  # waits on the sentinel
        os._exit(0)

    threading.Thread(target=watch, name="afarensis-parent-watch", daemon=True).start()
