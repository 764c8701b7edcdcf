"""Under injected faults, every input gets its own answer or a typed error, in order, once.

The local server injects 500/503 errors, 429s with ``Retry-After: 1``, dropped connections,
latency and cut streams (:class:`~langchain_afarensis_vision.server.Faults`). A recorder outside
the fault injection logs every attempt (``conftest.Recorder``), so each input's attempts can be
counted and timed on the server's side. Each input is a conversation ending with a unique tool
result (a marker) that the offline engine quotes back, and each answer's id is derived from the
exact request body: an answer is checked against the request it belongs to. The model is used
as users use it (``ChatAfarensis`` with its default retry policy, no injected clients).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage

from langchain_afarensis_vision import (
    AfarensisError,
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    ChatAfarensis,
    InternalServerError,
    InvalidImageError,
    RateLimitError,
)
from langchain_afarensis_vision.chat_models._transport import RetryPolicy
from langchain_afarensis_vision.server import Faults
from langchain_afarensis_vision.server.faults import CUT_AFTER_EVENTS
from tests.reliability.conftest import MARKER_PREFIX, Attempt, Recorded, echo_conversation

pytestmark = pytest.mark.enable_socket

Kind = Literal["ok", "too_long", "bad_image"]
RETRY_AFTER = 1.0
MIXED = Faults(
    error_rate=0.12,
    error_statuses=(500, 503),
    rate_limit_rate=0.1,
    retry_after=RETRY_AFTER,
    drop_connection_rate=0.05,
    latency=0.01,
)
RETRYABLE = {429, 500, 502, 503, 504, None}  # None: dropped before any answer
# The shortest wait the default policy ever makes before retry n (0-based) after a 5xx or a
# dropped connection: backoff with jitter takes off at most a quarter.
_POLICY = RetryPolicy()
_CLOCK_SLACK = 0.005
# Text that, with max_tokens, is over the 128k context window: a 400 the API never retries.
_TOO_LONG = " x" * 130_000  # 130,000 cl100k_base tokens
_BROKEN_IMAGE = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 40).decode()


@dataclass(frozen=True)
class Input:
    """One batch input and what it is meant to meet."""

    marker: str
    kind: Kind

    def messages(self) -> list[BaseMessage]:
        if self.kind == "too_long":
            return echo_conversation(self.marker, HumanMessage(_TOO_LONG))
        if self.kind == "bad_image":
            image = {"type": "image", "base64": _BROKEN_IMAGE, "mime_type": "image/png"}
            return echo_conversation(self.marker, HumanMessage(content=[image]))
        return echo_conversation(self.marker)


def make_inputs(count: int, tag: str, too_long_every: int = 0, bad_every: int = 0) -> list[Input]:
    inputs = []
    for i in range(count):
        kind: Kind = "ok"
        if too_long_every and i % too_long_every == too_long_every - 1:
            kind = "too_long"
        if bad_every and i % bad_every == bad_every // 2:
            kind = "bad_image"
        inputs.append(Input(f"{MARKER_PREFIX}{tag}-{i:04d}", kind))
    return inputs


def answer_for(marker: str) -> str:
    """How the engine's answer to an echo conversation ends."""
    return f"The tool `echo` returned: {marker}"


def min_backoff(retry: int) -> float:
    return float(_POLICY.initial_delay * 2**retry * 0.75 - _CLOCK_SLACK)


def _check_gaps(attempts: Sequence[Attempt]) -> None:
    """Every retry waited: Retry-After after a 429, the policy's backoff after anything else."""
    for n, (before, after) in enumerate(itertools.pairwise(attempts)):
        gap = after.started - before.started
        if before.status == 429:
            assert before.headers.get("retry-after") == f"{RETRY_AFTER:g}"
            assert gap >= RETRY_AFTER, f"retried {gap:.3f}s after a 429 with Retry-After: 1"
        else:
            assert gap >= min_backoff(n), f"retry {n + 1} came {gap:.3f}s after {before.status}"


def _check_error(error: BaseException, last: Attempt, attempts: int, max_retries: int) -> str:
    """The error matches the last attempt's fate; retryable fates used every retry."""
    assert isinstance(error, AfarensisError), f"untyped error {error!r}"
    if last.status in RETRYABLE:
        assert attempts == max_retries + 1, f"gave up after {attempts} attempts on {last.status}"
    if last.status == 429:
        assert isinstance(error, RateLimitError)
        assert error.retry_after == RETRY_AFTER
        return "429"
    if last.status is None:
        assert type(error) is APIConnectionError, repr(error)
        return "dropped"
    if last.status >= 500:
        assert isinstance(error, InternalServerError)
        assert error.status_code == last.status
        return "5xx"
    assert isinstance(error, BadRequestError), repr(error)
    assert error.status_code == last.status == 400
    assert error.code == "invalid_value"
    return "400"


def check_outcomes(
    inputs: Sequence[Input],
    results: Sequence[Any],
    recorded: Recorded,
    max_retries: int,
) -> Counter[str]:
    """Each input's result against its own attempts; returns what happened, counted."""
    assert len(results) == len(inputs)
    groups = recorded.by_marker()
    assert set(groups) <= {i.marker for i in inputs}, "a request nobody sent"
    seen: Counter[str] = Counter()
    for item, result in zip(inputs, results, strict=True):
        attempts = groups.get(item.marker, [])
        if item.kind == "bad_image":
            assert isinstance(result, InvalidImageError), repr(result)
            assert attempts == [], "a refused image reached the API"
            seen["refused_on_client"] += 1
            continue
        assert 1 <= len(attempts) <= max_retries + 1, (item.marker, len(attempts))
        assert len({a.digest for a in attempts}) == 1, "retries must resend the same body"
        *earlier, last = attempts
        assert all(a.status in RETRYABLE for a in earlier), [a.status for a in attempts]
        _check_gaps(attempts)
        seen[f"attempts={len(attempts)}"] += 1
        seen.update("after_429" for a in earlier if a.status == 429)
        if isinstance(result, AIMessage):
            assert item.kind == "ok"
            assert last.status == 200
            assert isinstance(result.content, str)
            assert result.content.endswith(answer_for(item.marker)), result.content
            assert result.response_metadata["id"] == f"chatcmpl-local-{last.digest}"
            seen["answered"] += 1
        else:
            assert all(a.status != 200 for a in attempts), "an answered request reported failed"
            fate = _check_error(result, last, len(attempts), max_retries)
            assert (fate == "400") is (item.kind == "too_long") or last.status in RETRYABLE
            seen[fate] += 1
            seen[f"{item.kind}:{fate}"] += 1
    return seen


# -- batches -----------------------------------------------------------------------------------


async def test_abatch_500_inputs_under_mixed_faults(
    recorded_server: Callable[..., Recorded],
) -> None:
    recorded = recorded_server(faults=MIXED, seed=11)
    server = recorded.server
    inputs = make_inputs(500, "abatch", too_long_every=50, bad_every=100)
    model = ChatAfarensis(base_url=server.base_url, api_key=server.api_key)
    began = time.monotonic()
    results = await model.abatch([i.messages() for i in inputs], return_exceptions=True)
    elapsed = time.monotonic() - began
    model.close()

    seen = check_outcomes(inputs, results, recorded, model.max_retries)
    print(f"\nabatch 500 in {elapsed:.1f}s: {dict(sorted(seen.items()))}")
    assert seen["answered"] >= 400
    assert seen["400"] >= 5  # of the 10 over-long inputs, those not failed by faults 3 times
    assert seen["too_long:400"] == seen["400"]
    assert seen["refused_on_client"] == 5
    assert seen["after_429"] > 0, "no input met a 429 and was retried"
    statuses = Counter(a.status for a in recorded.attempts)
    for status in (429, 500, 503, None):
        assert statuses[status] > 0, statuses
    assert elapsed >= RETRY_AFTER


def test_sync_batch_under_mixed_faults(recorded_server: Callable[..., Recorded]) -> None:
    recorded = recorded_server(faults=MIXED, seed=5)
    server = recorded.server
    inputs = make_inputs(80, "batch", too_long_every=40, bad_every=40)
    with ChatAfarensis(base_url=server.base_url, api_key=server.api_key, max_retries=3) as model:
        results = model.batch(
            [i.messages() for i in inputs], config={"max_concurrency": 16}, return_exceptions=True
        )
    seen = check_outcomes(inputs, results, recorded, max_retries=3)
    print(f"\nbatch 80: {dict(sorted(seen.items()))}")
    assert seen["answered"] >= 70
    assert seen["400"] >= 1
    assert seen["too_long:400"] == seen["400"]
    assert seen["refused_on_client"] == 2
    assert seen["after_429"] > 0


async def test_slow_responses(recorded_server: Callable[..., Recorded]) -> None:
    """Latency within the timeout only slows answers; beyond it, a typed timeout per input
    after exactly max_retries + 1 attempts."""
    recorded = recorded_server(faults=Faults(latency=0.4))
    server = recorded.server
    patient = ChatAfarensis(base_url=server.base_url, api_key=server.api_key, timeout=5)
    hasty = ChatAfarensis(
        base_url=server.base_url, api_key=server.api_key, timeout=0.15, max_retries=1
    )
    slow_inputs = make_inputs(6, "slow")
    hasty_inputs = make_inputs(6, "hasty")
    began = time.monotonic()
    answers, timeouts = await asyncio.gather(
        patient.abatch([i.messages() for i in slow_inputs], return_exceptions=True),
        hasty.abatch([i.messages() for i in hasty_inputs], return_exceptions=True),
    )
    elapsed = time.monotonic() - began
    patient.close()
    hasty.close()
    for item, answer in zip(slow_inputs, answers, strict=True):
        assert isinstance(answer, AIMessage), repr(answer)
        assert isinstance(answer.content, str)
        assert answer.content.endswith(answer_for(item.marker))
    groups = recorded.by_marker()
    for item, error in zip(hasty_inputs, timeouts, strict=True):
        assert isinstance(error, APITimeoutError), repr(error)
        attempts = groups[item.marker]
        assert len(attempts) == 2
        assert attempts[1].started - attempts[0].started >= 0.15 + min_backoff(0)
    assert 0.4 <= elapsed < 5


# -- streams -----------------------------------------------------------------------------------


def _pieces(chunks: Sequence[AIMessageChunk]) -> list[str]:
    return [c.content for c in chunks if isinstance(c.content, str) and c.content]


def _sent_pieces(attempt: Attempt) -> list[str]:
    """The content pieces the server actually sent in this attempt's stream."""
    pieces = []
    for event in attempt.events():
        for choice in event.get("choices", []):
            if content := choice.get("delta", {}).get("content"):
                pieces.append(content)
    return pieces


def _collect(stream: Iterator[AIMessageChunk], into: list[AIMessageChunk]) -> None:
    """Drain ``stream`` into ``into`` chunk by chunk (kept if the stream raises midway)."""
    for chunk in stream:
        into.append(chunk)


async def _acollect(stream: AsyncIterator[AIMessageChunk], into: list[AIMessageChunk]) -> None:
    async for chunk in stream:
        into.append(chunk)


def _check_cut(chunks: list[AIMessageChunk], error: BaseException, attempts: list[Attempt]) -> None:
    assert isinstance(error, APIConnectionError), repr(error)
    assert "before [DONE]" in str(error) or "Connection error" in str(error), str(error)
    assert len(attempts) == 1, "a stream that delivered chunks must not be retried"
    (attempt,) = attempts
    assert attempt.status == 200
    assert not attempt.complete
    assert len(attempt.events()) == CUT_AFTER_EVENTS
    # Exactly the pieces that left the server, once each, in order: none lost, none repeated.
    assert _pieces(chunks) == _sent_pieces(attempt)
    assert _pieces(chunks), "the chunks sent before the cut were not delivered"


def test_cut_stream_sync(recorded_server: Callable[..., Recorded]) -> None:
    recorded = recorded_server(faults=Faults(cut_stream_rate=1.0))
    server = recorded.server
    with ChatAfarensis(base_url=server.base_url, api_key=server.api_key) as model:
        for n in range(3):
            marker = f"{MARKER_PREFIX}cut-{n}"
            full = model.invoke(echo_conversation(marker))  # only streams are cut
            chunks: list[AIMessageChunk] = []
            with pytest.raises(APIConnectionError) as caught:
                _collect(model.stream(echo_conversation(marker)), chunks)
            attempts = recorded.by_marker()[marker]
            _check_cut(chunks, caught.value, attempts[1:])
            assert isinstance(full.content, str)
            partial = "".join(_pieces(chunks))
            assert full.content.startswith(partial)
            assert len(partial) < len(full.content)


async def test_cut_stream_async(recorded_server: Callable[..., Recorded]) -> None:
    recorded = recorded_server(faults=Faults(cut_stream_rate=1.0))
    server = recorded.server
    model = ChatAfarensis(base_url=server.base_url, api_key=server.api_key)
    for n in range(3):
        marker = f"{MARKER_PREFIX}acut-{n}"
        chunks: list[AIMessageChunk] = []
        with pytest.raises(APIConnectionError) as caught:
            await _acollect(model.astream(echo_conversation(marker)), chunks)
        _check_cut(chunks, caught.value, recorded.by_marker()[marker])
    model.close()


async def test_concurrent_streams_under_mixed_faults(
    recorded_server: Callable[..., Recorded],
) -> None:
    faults = Faults(
        error_rate=0.1,
        rate_limit_rate=0.1,
        retry_after=RETRY_AFTER,
        drop_connection_rate=0.05,
        cut_stream_rate=0.1,
    )
    recorded = recorded_server(faults=faults, seed=3)
    server = recorded.server
    model = ChatAfarensis(base_url=server.base_url, api_key=server.api_key)
    markers = [f"{MARKER_PREFIX}stream-{n:03d}" for n in range(120)]

    async def consume(marker: str) -> tuple[list[AIMessageChunk], BaseException | None]:
        chunks: list[AIMessageChunk] = []
        try:
            async for chunk in model.astream(echo_conversation(marker)):
                chunks.append(chunk)
        except Exception as exc:  # checked below: typed, and matching the attempts
            return chunks, exc
        return chunks, None

    outcomes = await asyncio.gather(*(consume(m) for m in markers))
    model.close()
    groups = recorded.by_marker()
    seen: Counter[str] = Counter()
    for marker, (chunks, error) in zip(markers, outcomes, strict=True):
        attempts = groups[marker]
        assert 1 <= len(attempts) <= model.max_retries + 1
        *earlier, last = attempts
        assert all(a.status in RETRYABLE for a in earlier)
        _check_gaps(attempts)
        if error is None:
            # The whole answer left the server. (Its closing empty body message may be recorded
            # a moment after the client, having read [DONE], has already returned.)
            assert last.sent.rstrip().endswith(b"data: [DONE]")
            assert last.status == 200
            text = "".join(_pieces(chunks))
            assert text.endswith(answer_for(marker)), text
            assert _pieces(chunks) == _sent_pieces(last)
            seen["answered"] += 1
        elif last.status == 200:  # cut mid-answer
            _check_cut(chunks, error, [last])
            seen["cut"] += 1
        else:
            assert chunks == [], "chunks from an attempt that failed before answering"
            seen[_check_error(error, last, len(attempts), model.max_retries)] += 1
    print(f"\nstreams 120: {dict(sorted(seen.items()))}")
    assert seen["answered"] >= 80
    assert seen["cut"] >= 3
