"""``AfarensisRateLimiter`` on a fake clock: budgets, learning, the 429 pause, sharing."""

from __future__ import annotations

import asyncio
import email.utils
import math
import threading
import time

import pytest

from langchain_afarensis_vision.errors import RateLimitError, RequestTooLargeError
from langchain_afarensis_vision.rate_limiters import AfarensisRateLimiter, parse_duration


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def headers(requests: tuple[int, int, str], tokens: tuple[int, int, str]) -> dict[str, str]:
    out = {}
    for kind, (limit, remaining, reset) in (("requests", requests), ("tokens", tokens)):
        out[f"x-ratelimit-limit-{kind}"] = str(limit)
        out[f"x-ratelimit-remaining-{kind}"] = str(remaining)
        out[f"x-ratelimit-reset-{kind}"] = reset
    return out


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("6m0s", 360.0),
        ("1s", 1.0),
        ("120ms", 0.12),
        ("1.5s", 1.5),
        ("1m5s", 65.0),
        ("1h2m3s", 3723.0),
        ("0s", 0.0),
        ("", None),
        ("soon", None),
    ],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_both_budgets_over_a_sliding_minute() -> None:
    clock = Clock()
    limiter = AfarensisRateLimiter(requests_per_minute=3, tokens_per_minute=100, clock=clock)
    assert all(limiter.acquire(blocking=False) for _ in range(3))
    assert not limiter.acquire(blocking=False)
    for _ in range(3):
        limiter.settle()  # the answers came back
    assert limiter.wait_time(1, 0) == pytest.approx(60)
    limiter.reserve_tokens(60)
    limiter.settle()
    clock.now += 30
    assert limiter.wait_time(0, 50) == pytest.approx(30)  # 60 + 50 > 100 until the 60 expire
    assert limiter.wait_time(0, 40) == 0
    clock.now += 30
    assert limiter.acquire(blocking=False)
    assert limiter.wait_time(0, 100) == 0


def test_a_request_over_the_whole_minute_fails_at_once() -> None:
    limiter = AfarensisRateLimiter(tokens_per_minute=100, clock=Clock())
    with pytest.raises(RequestTooLargeError, match="more than the 100 tokens a minute"):
        limiter.reserve_tokens(101)


def test_limits_are_learned_from_headers_and_capped_by_the_users() -> None:
    clock = Clock()
    limiter = AfarensisRateLimiter(tokens_per_minute=5000, clock=clock)
    assert limiter.acquire(blocking=False)  # the probe: one request until an answer teaches
    assert not limiter.acquire(blocking=False)
    limiter.observe(200, headers((500, 499, "120ms"), (10_000, 10_000, "0s")))
    assert (limiter.limit_requests, limiter.limit_tokens, limiter.learned) == (500, 5000, True)
    assert limiter.acquire(blocking=False)


def test_what_another_program_spent_is_charged_until_the_reset() -> None:
    clock = Clock()
    limiter = AfarensisRateLimiter(clock=clock)
    limiter.observe(200, headers((500, 500, "0s"), (10_000, 4_000, "36s")))  # 6000 not ours
    assert limiter.wait_time(0, 5_000) == pytest.approx(36)
    assert limiter.wait_time(0, 4_000) == 0
    clock.now += 36
    assert limiter.wait_time(0, 10_000) == 0


def test_a_429_pauses_everyone_and_no_burst_follows() -> None:
    clock = Clock()
    limiter = AfarensisRateLimiter(clock=clock)
    limiter.observe(200, headers((500, 500, "0s"), (1_000, 1_000, "0s")))
    limiter.reserve_tokens(600)
    limiter.settle()
    clock.now += 10
    limiter.observe(429, {"retry-after-ms": "5000", **headers((500, 499, "0s"), (1_000, 0, "5s"))})
    assert limiter.rate_limited == 1
    assert limiter.wait_time(1, 0) == pytest.approx(5)  # every caller, even a plain request
    assert not limiter.acquire(blocking=False)
    clock.now += 5
    assert limiter.wait_time(0, 400) == 0  # the limit, less what we sent in the minute
    assert limiter.wait_time(0, 500) == pytest.approx(45)  # not the whole limit: no burst


def test_a_charge_counts_from_its_answer_not_from_its_start() -> None:
    """The server counts a request some time before it answers: until the answer, the charge
    does not expire; from it, a minute. A charge never settled expires a grace period late."""
    clock = Clock()
    limiter = AfarensisRateLimiter(requests_per_minute=1, tokens_per_minute=100, clock=clock)
    limiter.reserve_tokens(100)
    clock.now += 61
    assert limiter.wait_time(0, 1) > 0  # still in flight: the server may count it now
    limiter.settle()
    assert limiter.wait_time(0, 1) == pytest.approx(60)
    assert limiter.acquire(blocking=False)  # never settled (another model's acquire):
    clock.now += 119
    assert not limiter.acquire(blocking=False)
    clock.now += 1
    assert limiter.acquire(blocking=False)  # ... it expires a grace minute late


def test_retry_after_in_seconds() -> None:
    clock = Clock()
    limiter = AfarensisRateLimiter(clock=clock)
    limiter.observe(429, {"retry-after": "3"})
    assert limiter.wait_time() == pytest.approx(3)


@pytest.mark.parametrize(
    ("retry_after", "pause"),
    [
        pytest.param({"retry-after": "inf"}, 1.0, id="inf"),
        pytest.param({"retry-after": "nan"}, 1.0, id="nan"),
        pytest.param({"retry-after": "-30"}, 1.0, id="negative"),
        pytest.param({"retry-after-ms": "-1", "retry-after": "2"}, 2.0, id="negative-ms"),
        pytest.param({"retry-after": "Sat, 01 Jan 2000 00:00:00 GMT"}, 0.0, id="past-date"),
    ],
)
def test_a_429_that_names_no_sane_time_pauses_briefly(
    retry_after: dict[str, str], pause: float
) -> None:
    clock = Clock()
    limiter = AfarensisRateLimiter(clock=clock)
    limiter.observe(429, retry_after)
    assert limiter.wait_time() == pytest.approx(pause)


def test_a_retry_after_given_as_an_http_date_is_waited_for() -> None:
    limiter = AfarensisRateLimiter(clock=Clock())
    limiter.observe(429, {"retry-after": email.utils.formatdate(time.time() + 20, usegmt=True)})
    assert limiter.wait_time() == pytest.approx(20, abs=2)


@pytest.mark.parametrize(
    "retry_after",
    [
        pytest.param({"retry-after": "1e9"}, id="seconds"),
        pytest.param({"retry-after-ms": str(10**12)}, id="milliseconds"),
        pytest.param({"retry-after": "Fri, 01 Jan 2100 00:00:00 GMT"}, id="http-date"),
    ],
)
def test_a_pause_longer_than_max_retry_after_raises_at_once(retry_after: dict[str, str]) -> None:
    clock = Clock()
    limiter = AfarensisRateLimiter(clock=clock)
    limiter.observe(429, {**retry_after, "x-request-id": "req_1", "authorization": "Bearer k"})
    for call in (limiter.acquire, lambda: limiter.reserve_tokens(10)):
        with pytest.raises(RateLimitError, match="max_retry_after") as raised:
            call()
        assert raised.value.retry_after is not None
        assert raised.value.retry_after > 10**8
        assert raised.value.request_id == "req_1"  # the 429 that asked for the pause
        assert raised.value.response is not None
        assert "authorization" not in raised.value.response.headers
    with pytest.raises(RateLimitError):
        asyncio.run(limiter.aacquire())


def test_max_retry_after_is_a_setting() -> None:
    clock = Clock()
    patient = AfarensisRateLimiter(clock=clock, max_retry_after=math.inf)
    patient.observe(429, {"retry-after": "1e9"})
    assert patient.wait_time() == pytest.approx(1e9)
    assert not patient.acquire(blocking=False)
    hasty = AfarensisRateLimiter(clock=clock, max_retry_after=5)
    hasty.observe(429, {"retry-after": "6"})
    with pytest.raises(RateLimitError) as raised:
        hasty.acquire()
    assert raised.value.retry_after == pytest.approx(6)
    clock.now += 1.5  # what is left is under the cap now: waited for
    assert not hasty.acquire(blocking=False)
    clock.now += 4.5
    assert hasty.acquire(blocking=False)
    with pytest.raises(ValueError, match="max_retry_after"):
        AfarensisRateLimiter(max_retry_after=-1)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(((0, 0, "0s"), (10_000, 10_000, "0s")), id="zero-requests"),
        pytest.param(((100, 100, "0s"), (0, 0, "0s")), id="zero-tokens"),
        pytest.param(((100, 100, "0s"), (-5, -5, "0s")), id="negative-tokens"),
        pytest.param(((-1, 0, "0s"), (-5, 0, "0s")), id="negative-both"),
    ],
)
def test_a_limit_of_zero_or_less_is_not_learned(
    bad: tuple[tuple[int, int, str], tuple[int, int, str]],
) -> None:
    clock = Clock()
    limiter = AfarensisRateLimiter(clock=clock)
    limiter.observe(200, headers((100, 100, "0s"), (10_000, 10_000, "0s")))
    limiter.observe(200, headers(*bad))
    assert limiter.limit_requests is not None
    assert limiter.limit_requests > 0
    assert limiter.limit_tokens is not None
    assert limiter.limit_tokens > 0
    for _ in range(5):
        assert limiter.acquire(blocking=False)
        limiter.reserve_tokens(1_000)
        limiter.settle()


def test_a_negative_remaining_count_is_ignored() -> None:
    clock = Clock()
    limiter = AfarensisRateLimiter(clock=clock)
    limiter.observe(200, headers((100, -(10**9), "30s"), (10_000, -(10**9), "30s")))
    assert limiter.wait_time(1, 1_000) == 0


def test_threads_and_event_loops_share_one_limiter() -> None:
    clock = Clock()
    limiter = AfarensisRateLimiter(requests_per_minute=10, tokens_per_minute=10**6, clock=clock)
    granted: list[bool] = []
    lock = threading.Lock()

    def sync_caller() -> None:
        for _ in range(5):
            ok = limiter.acquire(blocking=False)
            with lock:
                granted.append(ok)

    def async_caller() -> None:
        async def run() -> list[bool]:
            return [await limiter.aacquire(blocking=False) for _ in range(5)]

        results = asyncio.run(run())
        with lock:
            granted.extend(results)

    threads = [threading.Thread(target=f) for f in (sync_caller, async_caller) * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 40
    assert sum(granted) == 10


async def test_async_waiters_wake_when_the_window_frees() -> None:
    clock = Clock()
    limiter = AfarensisRateLimiter(
        requests_per_minute=1, tokens_per_minute=100, clock=clock, check_every=0.01
    )
    assert await limiter.aacquire()
    limiter.settle()
    waiter = asyncio.create_task(limiter.aacquire())
    await asyncio.sleep(0.05)
    assert not waiter.done()
    clock.now += 60
    assert await asyncio.wait_for(waiter, 1)


def test_a_probe_that_fails_without_an_answer_lets_the_next_one_go() -> None:
    clock = Clock()
    limiter = AfarensisRateLimiter(clock=clock)
    assert limiter.acquire(blocking=False)
    assert not limiter.acquire(blocking=False)  # one at a time until an answer teaches
    limiter.settle()  # the call ended with no answer (connection refused)
    assert limiter.acquire(blocking=False)


def test_a_cluster_budget_hands_a_too_long_pause_back_as_a_rate_limit_error() -> None:
    """The Ray budget actor's answer crosses processes as data; the caller raises it."""
    pytest.importorskip("ray")
    from langchain_afarensis_vision.ray._budget import SharedBudget, _outcome

    budget = SharedBudget(None, None)  # the actor's class, called in-process
    headers = {"retry-after": "1e9", "x-request-id": "req_9"}
    [answer] = budget.exchange("client", 0, [(429, headers)], [(1, 0)])
    with pytest.raises(RateLimitError, match="max_retry_after") as raised:
        _outcome(answer)
    assert raised.value.retry_after == pytest.approx(1e9)
    assert raised.value.request_id == "req_9"
