"""The corpus job's engine: one event loop, sources in, one synced JSONL line per image out.

Used by :mod:`.corpus`. Each source is read and hashed on a thread, skipped if ``out`` has it,
copied if an identical image was (or is being) sent, else prepared on the executor (a process
pool: the :class:`~.images.PreparedImage` comes back and is sealed here by ``content_block()``),
charged against the token budget, and sent through the model and its shared limiter.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Final

from langchain_core.messages import AIMessage, HumanMessage

from langchain_afarensis_vision._api.contract import Detail, is_fetched_url
from langchain_afarensis_vision._progress import Progress
from langchain_afarensis_vision._sources.read import read_source
from langchain_afarensis_vision.chat_models import ChatAfarensis
from langchain_afarensis_vision.chat_models._messages import ImageUrl, question_message
from langchain_afarensis_vision.chat_models._tokens import count_messages, image_tokens
from langchain_afarensis_vision.corpus._budget import TokenBudget
from langchain_afarensis_vision.corpus._store import (
    ResultStore,
    error_record,
    exception_record,
    is_refusal,
    job_key,
)
from langchain_afarensis_vision.corpus._summary import CorpusSummary, duration
from langchain_afarensis_vision.errors import InvalidImageError
from langchain_afarensis_vision.images import (
    PreparedImage,
    prepare_image,
    refused_facts,
    unknown_facts,
)
from langchain_afarensis_vision.rate_limiters import AfarensisRateLimiter

__all__ = ["Job", "rate_limited"]

_NAMES_PER_HOP: Final = 64  # source names taken from the (blocking) iterator per thread hop
_BROKEN_POOL: Final = (
    "A worker process preparing images died. Run from a script, the workers import that script "
    'again: put the code that calls describe_images under `if __name__ == "__main__":`. A '
    "worker killed by the system (out of memory, a signal) ends the same way. workers=0 "
    "prepares the images on threads instead. The lines already in `out` are kept: run again "
    "to go on."
)


@dataclass(frozen=True)
class _Refusal:
    """A client-side refusal from a worker (exceptions lose their ``code`` when pickled)."""

    code: str
    message: str


def _prepare(data: bytes, detail: Detail, first_frame: bool) -> PreparedImage | _Refusal:
    """Prepare one image (in a worker process or thread)."""
    try:
        return prepare_image(data, detail, first_frame=first_frame)
    except InvalidImageError as error:
        return _Refusal(str(error.code), error.message)


def _read(path: str) -> tuple[bytes, str]:
    data = read_source(path)  # size-capped; a FIFO is refused, not waited on
    return data, hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class _Line:
    """A line written: where, and its record (what a copy of it is made from)."""

    offset: int
    record: dict[str, Any]


_Written = _Line | None  # None: no line (a dry run, or the budget stopped it)


@dataclass
class _Item:
    source: str
    key: str
    sha256: str | None
    data: bytes | None


class Job:
    """One run's state; everything happens on one event loop."""

    def __init__(
        self,
        llm: ChatAfarensis,
        store: ResultStore,
        executor: Executor | None,
        options: dict[str, Any],
        progress: Progress,
        on_progress: Callable[[CorpusSummary], object] | None = None,
    ) -> None:
        self.llm, self.store, self.executor, self.progress = llm, store, executor, progress
        self.on_progress = on_progress
        self.question: str = options["question"]
        self.detail: Detail = options["detail"]
        self.max_tokens: int = options["max_tokens"]
        self.summary = CorpusSummary(dry_run=options["dry_run"])
        self.budget = TokenBudget(self.summary, store, options["budget_tokens"], options["retries"])
        self.pending: dict[str, asyncio.Future[_Written]] = {}  # key -> its line, once written
        self.handled: dict[str, int | None] = {}  # keys finished this run -> offset
        self.fatal: BaseException | None = None
        self._write_lock = asyncio.Lock()
        self._start = time.monotonic()
        self._recent: deque[tuple[float, int]] = deque()  # (when, tokens billed) in the last 60 s

    @property
    def stopping(self) -> bool:
        return self.summary.stopped is not None or self.fatal is not None

    async def run(self, sources: Iterator[str], concurrency: int) -> CorpusSummary:
        slots = asyncio.Semaphore(concurrency)
        tasks: set[asyncio.Task[None]] = set()
        while not self.stopping:
            names = await asyncio.to_thread(list, itertools.islice(sources, _NAMES_PER_HOP))
            if not names:
                break
            for name in names:
                await slots.acquire()
                if self.stopping:
                    slots.release()
                    break
                task = asyncio.create_task(self._one(name))
                tasks.add(task)
                task.add_done_callback(functools.partial(self._finished, tasks, slots))
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.fatal is not None:
            raise self.fatal
        return self.summary

    def _finished(
        self, tasks: set[asyncio.Task[None]], slots: asyncio.Semaphore, task: asyncio.Task[None]
    ) -> None:
        tasks.discard(task)
        slots.release()
        if not task.cancelled() and (error := task.exception()) is not None:
            self.fatal = self.fatal or error

    # -- one source -----------------------------------------------------------------------------

    async def _one(self, source: str) -> None:
        self.summary.sources += 1
        unreadable = None
        try:
            item = await self._item(source)
        except (OSError, InvalidImageError) as error:  # unreadable (retried) or too large (not)
            item = _Item(source, job_key(source, *self._request()), None, None)
            unreadable = exception_record(error)
        if self.store.has(source, item.key):
            self.summary.skipped += 1
            self.summary.refused_earlier += (source, item.key) in self.store.refused
            self._advance()
        elif unreadable is not None:
            await self._write(self._record(item, error=unreadable))
        elif self._seen(item.key):
            await self._copy(item)
        else:
            await self._original(item)

    async def _item(self, source: str) -> _Item:
        if is_fetched_url(source):
            return _Item(source, job_key(source, *self._request()), None, None)
        data, sha256 = await asyncio.to_thread(_read, source)
        return _Item(source, job_key(sha256, *self._request()), sha256, data)

    def _request(self) -> tuple[str, str, str, int]:
        return self.question, self.detail, self.llm.model, self.max_tokens

    def _seen(self, key: str) -> bool:
        """Whether an identical image was (or is being) sent, this run or before."""
        return key in self.handled or key in self.store.done or key in self.pending

    def _first(self, key: str) -> int | None:
        return self.handled[key] if key in self.handled else self.store.done.get(key)

    async def _original(self, item: _Item) -> None:
        future: asyncio.Future[_Written] = asyncio.get_running_loop().create_future()
        self.pending[item.key] = future
        try:
            written = await self._describe(item)
            future.set_result(written)
            self.handled[item.key] = None if written is None else written.offset
        finally:
            del self.pending[item.key]
            if not future.done():
                future.cancel()

    async def _copy(self, item: _Item) -> None:
        """A line for an image identical to one sent (or being sent) in this run or before.

        It is made from the original's record itself: the one just written, or the line its
        offset points to (checked to be that key's).
        """
        if (pending := self.pending.get(item.key)) is not None:
            written = await asyncio.shield(pending)
            original = None if written is None else written.record
        else:
            offset = self._first(item.key)
            original = None if offset is None else self.store.read(offset, item.key)
        if self.summary.dry_run:
            self.summary.duplicates += 1
            self._advance()
            return
        if original is None:  # the original was never sent (the budget stopped it)
            return
        record = {**original, "source": item.source, "duplicate_of": original["source"]}
        record.update(prompt_tokens=0, completion_tokens=0)
        self.summary.duplicates += 1
        await self._write(record)

    # -- prepare, ask, record -------------------------------------------------------------------

    async def _describe(self, item: _Item) -> _Written:
        prepared: PreparedImage | None = None
        if item.data is not None:
            result = await self._prepare(item.data)
            if isinstance(result, _Refusal):  # its record says what its header does
                error = error_record("InvalidImageError", result.code, result.message)
                return await self._write(self._record(item, error=error))
            item.data = None  # the bytes are not held while waiting for the rate limit
            prepared = result
        image = prepared or ImageUrl(item.source, self.detail)
        message = question_message(self.question, image)  # content_block() seals it here
        cost = count_messages([message], None, self.detail) + self.max_tokens
        if self.summary.dry_run:
            self._plan(prepared, cost)
            return None
        return await self._ask(item, prepared, message, cost)

    async def _prepare(self, data: bytes) -> PreparedImage | _Refusal:
        call = functools.partial(_prepare, data, self.detail, self.llm.image_first_frame)
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, call)
        except BrokenProcessPool as error:
            raise BrokenProcessPool(_BROKEN_POOL) from error

    def _plan(self, prepared: PreparedImage | None, cost: int) -> None:
        self.summary.max_billable += cost
        if prepared is None:
            self.summary.urls_at_upper_bound += 1
        url = ImageUrl("", self.detail)
        self.summary.image_tokens += prepared.tokens if prepared else image_tokens(url, None)
        self._advance()

    async def _ask(
        self, item: _Item, prepared: PreparedImage | None, message: HumanMessage, cost: int
    ) -> _Written:
        reply = await self.budget.ask(self.llm, message, cost)
        if reply is None:  # the budget stopped it before it was sent
            return None
        if not isinstance(reply, AIMessage):
            return await self._write(self._record(item, prepared, error=exception_record(reply)))
        usage = reply.usage_metadata or {"input_tokens": 0, "output_tokens": 0}
        self.summary.sent += 1
        self.summary.prompt_tokens += usage["input_tokens"]
        self.summary.completion_tokens += usage["output_tokens"]
        self._billed(usage["input_tokens"] + usage["output_tokens"])
        self.summary.image_tokens += prepared.tokens if prepared else 0
        record = self._record(item, prepared)
        record.update(
            description=reply.text,
            prompt_tokens=usage["input_tokens"],
            completion_tokens=usage["output_tokens"],
            model=reply.response_metadata.get("model_name") or self.llm.model,
        )
        return await self._write(record)

    def _record(
        self,
        item: _Item,
        prepared: PreparedImage | None = None,
        *,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if prepared is not None:
            facts = prepared.facts()
        elif item.data is not None:  # refused: what its header says
            facts = refused_facts(item.data, self.detail)
        else:  # a URL the API fetches, or a file that could not be read
            facts = unknown_facts(self.detail)
        return {
            "source": item.source,
            "sha256": item.sha256,
            "description": None,
            **facts,
            "prompt_tokens": None,
            "completion_tokens": None,
            "model": self.llm.model,
            "error": error,
            "key": item.key,
        }

    async def _write(self, record: dict[str, Any]) -> _Written:
        written = None
        if not self.summary.dry_run:
            async with self._write_lock:  # one line at a time, each synced before the next
                offset = await asyncio.to_thread(self.store.write, record)
            written = _Line(offset, record)
        if is_refusal(record["error"]):
            self.summary.refused += 1
        elif record["error"] is not None:
            self.summary.failed += 1
        elif not self.summary.dry_run:
            self.summary.described += 1
        self._advance()
        return written

    def _billed(self, tokens: int) -> None:
        self._recent.append((time.monotonic(), tokens))
        self.summary.tokens_last_minute += tokens

    def _advance(self) -> None:
        summary = self.summary
        summary.rate_limited = rate_limited(self.llm)
        now = time.monotonic()
        while self._recent and self._recent[0][0] <= now - 60:
            summary.tokens_last_minute -= self._recent.popleft()[1]
        elapsed = now - self._start
        left = self.progress.total - self.progress.count - 1
        done = self.progress.count + 1
        eta = duration(left * elapsed / done) if self.progress.total else "?"
        self.progress.advance(
            extra=f"{summary.refused} refused, {summary.failed} failed, "
            f"{summary.tokens_last_minute:,} tokens/min, "
            f"{summary.rate_limited} 429s, ETA {eta}"
        )
        if self.on_progress is not None:
            summary.seconds = elapsed
            self.on_progress(summary)


def rate_limited(llm: ChatAfarensis) -> int:
    limiter = llm.rate_limiter
    return limiter.rate_limited if isinstance(limiter, AfarensisRateLimiter) else 0
