"""Keeping to a tokens-per-minute limit: AfarensisRateLimiter against what users run today.

Run: ``.venv/bin/python benchmarks/bench_rate_limit.py [tpm] [requests]`` (default 6000, 75)

A local server (its own process) limits tokens to ``tpm`` a minute over a sliding window and
answers 429 past it. The same requests (a question and a small image at detail ``low``, with
``max_tokens`` 100: about 200 tokens each, ``requests`` of them: about 2.5 minutes of the
limit's worth) are sent, 32 at a time, by:

* ours, limits given: ``ChatAfarensis(rate_limiter=AfarensisRateLimiter(tokens_per_minute=tpm))``
* ours, limits learned from the answers' headers: ``AfarensisRateLimiter()``
* plain ``abatch`` with the client's retries (429s are retried after ``Retry-After``)
* LangChain's ``InMemoryRateLimiter`` at the request rate the limit implies (it counts requests)

For each: how long the run took, the tokens per minute achieved (what the server counts:
prompt + max_tokens, over the elapsed time), the 429 answers the server sent, and failures.
"""

from __future__ import annotations

import asyncio
import base64
import io
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import machine, result, server_process  # noqa: E402
from langchain_core.messages import HumanMessage  # noqa: E402
from langchain_core.rate_limiters import InMemoryRateLimiter  # noqa: E402
from PIL import Image  # noqa: E402

from langchain_afarensis_vision import AfarensisRateLimiter, ChatAfarensis  # noqa: E402

MAX_TOKENS = 100


def question(n: int) -> list[HumanMessage]:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (n % 256, 90, 200)).save(buffer, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    image = {"type": "image_url", "image_url": {"url": url, "detail": "low"}}
    return [HumanMessage(content=[{"type": "text", "text": f"Image {n}?"}, image])]


class Counting:
    """Counts the 429s the server answers (the model's transport is told every answer)."""

    def __init__(self) -> None:
        self.rate_limited = 0

    def __call__(self, status: int, headers: Any) -> None:
        self.rate_limited += status == 429


async def run(base_url: str, api_key: str, requests: int, **options: Any) -> dict[str, float]:
    model = ChatAfarensis(base_url=base_url, api_key=api_key, max_tokens=MAX_TOKENS, **options)
    counting = Counting()
    transport = model._transport
    observe = transport._observe

    def both(status: int, headers: Any) -> None:
        counting(status, headers)
        if observe is not None:
            observe(status, headers)

    transport._observe = both
    start = time.monotonic()
    answers = await model.abatch(
        [question(n) for n in range(requests)],
        config={"max_concurrency": 32},
        return_exceptions=True,
    )
    elapsed = time.monotonic() - start
    ok = [a for a in answers if not isinstance(a, BaseException)]
    billed = 0
    for answer in ok:
        assert answer.usage_metadata is not None
        billed += answer.usage_metadata["input_tokens"] + MAX_TOKENS
    return {
        "seconds": elapsed,
        "tpm": billed / (elapsed / 60),
        "429s": counting.rate_limited,
        "failed": len(answers) - len(ok),
    }


def main() -> None:
    tpm = int(sys.argv[1]) if len(sys.argv) > 1 else 6000
    requests = int(sys.argv[2]) if len(sys.argv) > 2 else 75
    print(machine())
    print(f"server limit: {tpm:,} tokens a minute; {requests} requests of about 200 tokens")
    sides: dict[str, dict[str, Any]] = {
        "ours, limit given": {"rate_limiter": AfarensisRateLimiter(tokens_per_minute=tpm)},
        "ours, limit learned": {"rate_limiter": AfarensisRateLimiter()},
        "plain abatch + retries": {"max_retries": 6},
        "InMemoryRateLimiter": {
            "rate_limiter": InMemoryRateLimiter(requests_per_second=tpm / 200 / 60),
            "max_retries": 6,
        },
    }
    figures = {}
    for name, options in sides.items():
        with server_process(tokens_per_minute=tpm) as server:
            figures[name] = asyncio.run(run(server.base_url, server.api_key, requests, **options))
        f = figures[name]
        print(
            f"  {name:24s} {f['seconds']:6.1f} s  {f['tpm']:8,.0f} tokens/min "
            f"({f['tpm'] / tpm:.0%} of the limit)  429s {f['429s']:4.0f} "
            f"({f['429s'] / requests:.0%} of requests)  failed {f['failed']:.0f}"
        )
    ours, learned = figures["ours, limit given"], figures["ours, limit learned"]
    plain = figures["plain abatch + retries"]
    for label, side in (("given", ours), ("learned", learned)):
        result(
            f"rate limit, 429s per request, limit {label} (vs abatch)",
            side["429s"] / requests,
            plain["429s"] / requests,
            "",
            "<= 1%",
            side["429s"] <= requests * 0.01 and side["failed"] == 0,
        )
        result(
            f"rate limit, tokens/min of the limit, limit {label}",
            side["tpm"] / tpm,
            1.0,
            "",
            ">= 90%",
            side["tpm"] >= 0.9 * tpm,
        )


if __name__ == "__main__":
    main()
