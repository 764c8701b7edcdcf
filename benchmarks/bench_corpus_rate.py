"""A corpus run against a tokens-per-minute limit, and a run killed with SIGKILL and resumed.

Run: ``.venv/bin/python benchmarks/bench_corpus_rate.py [tpm] [multiple] [--resume-only]``
(default 20000 and 3). Not part of ``run_all.py``: it takes about a quarter of an hour.

**Keeping to the limit.** A local server (its own process, ``server_process(counting=True)``)
limits tokens to ``tpm`` a minute over a sliding 60 s window and answers 429 past it. Enough
distinct small generated PNGs (64 x 64 noise, ``detail="low"``, ``max_tokens`` 100, the default
question: the server counts each as its prompt tokens plus 100) to cost ``multiple`` times
``tpm`` are described, 8 at a time, by:

a. ``describe_images(..., tokens_per_minute=tpm)``: the limit given;
b. ``describe_images(...)``: the limit learned from the ``x-ratelimit-*`` headers;
c. ``AfarensisImageLoader(..., max_concurrency=8).aload()`` with a plain ``ChatAfarensis``
   (default ``max_retries=2``; 429s are retried after their ``Retry-After``), as users run it;
d. a plain ``ChatAfarensis.abatch`` of the same messages (the images prepared beforehand, not
   timed), ``max_concurrency`` 8.

Each side gets a fresh server (an empty window). Counted in the server process: the requests,
the 429 answers, and the tokens its limiter admitted and when. Reported per side: seconds (the
call, from start to return), tokens a minute over those seconds and as a share of the limit,
the best 60 s window, the 429 answers as a share of the requests, and the images not described.
A run starts with an empty window, and no 60 s window may hold more than ``tpm // cost``
requests (``k``), so the last of ``n`` requests cannot be admitted sooner than
``60 * ((n - 1) // k)`` seconds after the first: that *least time* is printed beside each
side's, and their ratio (1.0: as fast as the server allows). Tokens over the run's seconds
depend on where ``n`` falls between multiples of ``k``: the default ``n`` (``multiple * tpm``
worth of requests, rounded up) is just past ``3k``, so a run that is as fast as the window
allows achieves about 100% of the limit.

**Kill and resume.** ``afarensis-vision caption DIR --out F --tpm tpm --concurrency 8`` (the CLI,
``AFARENSIS_API_KEY``/``AFARENSIS_BASE_URL`` pointing at a counting server limited to ``tpm``,
with 0.5 s of latency added to every answer so that requests are in flight) over 120 of the
images is killed with SIGKILL once half the lines are written, then run again to the end.
Reported: whether every source is in ``F`` exactly once, with no error, and the requests the
server received over both runs against the bound ``images + concurrency`` (the killed run's
requests in flight are lost, nothing else is sent twice).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import Server, load_average, machine, result, server_process  # noqa: E402
from PIL import Image  # noqa: E402

from langchain_afarensis_vision import (  # noqa: E402
    AfarensisImageLoader,
    ChatAfarensis,
    describe_images,
    prepare_image,
)
from langchain_afarensis_vision.chat_models._messages import DEFAULT_QUESTION, question_message  # noqa: E402
from langchain_afarensis_vision.chat_models._tokens import count_messages  # noqa: E402
from langchain_afarensis_vision.server.faults import Faults  # noqa: E402

MAX_TOKENS = 100
CONCURRENCY = 8
RESUME_IMAGES = 120
RESUME_LATENCY = 0.5


def make_images(folder: Path, count: int) -> list[str]:
    """``count`` distinct 64 x 64 PNGs of noise."""
    folder.mkdir(parents=True, exist_ok=True)
    noise = random.Random(f"{folder.name}:{count}")
    paths = []
    for n in range(count):
        path = folder / f"image_{n:04d}.png"
        Image.frombytes("RGB", (64, 64), noise.randbytes(64 * 64 * 3)).save(path)
        paths.append(str(path))
    return paths


def cost_of_one(path: str) -> int:
    """What the server counts for one request: prompt tokens + max_tokens."""
    message = question_message(DEFAULT_QUESTION, prepare_image(path, "low"))
    return count_messages([message], None, "low") + MAX_TOKENS


# -- the four sides ------------------------------------------------------------------------------


def corpus(server: Server, images: list[str], folder: Path, tpm: int | None) -> int:
    """describe_images; returns the images not described."""
    llm = ChatAfarensis(base_url=server.base_url, api_key=server.api_key)
    out = folder / f"out_{tpm}.jsonl"
    summary = describe_images(
        images,
        out=out,
        llm=llm,
        detail="low",
        max_tokens=MAX_TOKENS,
        concurrency=CONCURRENCY,
        tokens_per_minute=tpm,
        show_progress=False,
    )
    print(f"    {summary.line()}")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    described = {r["source"] for r in lines if r["error"] is None}
    return len(images) - len(described)


def loader(server: Server, images: list[str]) -> int:
    """AfarensisImageLoader.aload with a plain ChatAfarensis; returns the images skipped."""
    llm = ChatAfarensis(base_url=server.base_url, api_key=server.api_key, max_tokens=MAX_TOKENS)
    load = AfarensisImageLoader(
        images, llm=llm, detail="low", max_concurrency=CONCURRENCY, show_progress=False
    )
    with warnings.catch_warnings(record=True) as skipped:
        warnings.simplefilter("always")
        documents = asyncio.run(load.aload())
    if skipped:
        print(f"    first skip: {skipped[0].message}")
    return len(images) - len(documents)


def batch(server: Server, messages: list[Any]) -> int:
    """ChatAfarensis.abatch of prepared messages; returns the failed ones."""
    llm = ChatAfarensis(base_url=server.base_url, api_key=server.api_key, max_tokens=MAX_TOKENS)

    async def run() -> list[Any]:
        try:
            return await llm.abatch(
                messages, config={"max_concurrency": CONCURRENCY}, return_exceptions=True
            )
        finally:
            await llm.aclose()

    answers = asyncio.run(run())
    errors = [a for a in answers if isinstance(a, BaseException)]
    if errors:
        print(f"    first failure: {type(errors[0]).__name__}: {errors[0]}"[:300])
    return len(errors)


def side(
    name: str,
    tpm: int,
    run: Callable[[Server], int],
    requested: int,
    least: float,
) -> dict[str, float]:
    with server_process(counting=True, tokens_per_minute=tpm) as server:
        start = time.monotonic()
        failed = run(server)
        seconds = time.monotonic() - start
        counts = server.counts()
    tokens = counts.tokens()
    figures = {
        "seconds": seconds,
        "tokens": tokens,
        "tpm": tokens * 60 / seconds,
        "best_minute": counts.best_minute(),
        "requests": counts.requests,
        "429s": counts.rate_limited,
        "failed": failed,
    }
    print(
        f"  {name:34s} {seconds:6.1f} s  {figures['tpm']:7,.0f} tokens/min "
        f"({figures['tpm'] / tpm:4.0%} of the limit; best minute {figures['best_minute']:,}; "
        f"least time / time {least / seconds:.2f})  {counts.requests} requests, "
        f"429s {counts.rate_limited} ({counts.rate_limited / counts.requests:.1%})  "
        f"failed {failed} of {requested}  statuses {dict(sorted(counts.statuses.items()))}",
        flush=True,
    )
    return figures


def rate_sides(folder: Path, tpm: int, multiple: float) -> None:
    probe = make_images(folder / "probe", 1)[0]
    per_request = cost_of_one(probe)
    count = math.ceil(multiple * tpm / per_request)
    images = make_images(folder / "images", count)
    total = count * per_request
    least = 60.0 * ((count - 1) // (tpm // per_request))
    print(
        f"server limit: {tpm:,} tokens a minute; {count} distinct 64 x 64 PNGs at detail low, "
        f"max_tokens {MAX_TOKENS}: {per_request} tokens each as the server counts them, "
        f"{total:,} in all ({total / tpm:.1f}x the limit); {CONCURRENCY} at a time. "
        f"The least time the server's window allows: {least:.0f} s "
        f"({tpm // per_request} requests a window)."
    )
    messages = [[question_message(DEFAULT_QUESTION, prepare_image(p, "low"))] for p in images]
    sides: dict[str, Callable[[Server], int]] = {
        f"a. describe_images, tpm={tpm}": lambda s: corpus(s, images, folder, tpm),
        "b. describe_images, limit learned": lambda s: corpus(s, images, folder, None),
        "c. AfarensisImageLoader.aload": lambda s: loader(s, images),
        "d. ChatAfarensis.abatch": lambda s: batch(s, messages),
    }
    figures = {name: side(name, tpm, run, count, least) for name, run in sides.items()}
    given, learned, load, plain = figures.values()
    for label, f in (("given", given), ("learned", learned)):
        result(
            f"corpus at {tpm:,} tpm, tokens/min over the run of the limit, limit {label}",
            f["tpm"] / tpm,
            1.0,
            "",
            ">= 90%",
            f["tpm"] >= 0.9 * tpm,
        )
        result(
            f"corpus at {tpm:,} tpm, 429s per request, limit {label} (vs loader)",
            f["429s"] / f["requests"],
            load["429s"] / load["requests"],
            "",
            "<= 1%, 0 failed",
            f["429s"] <= 0.01 * f["requests"] and f["failed"] == 0,
        )
    for label, f in (("given", given), ("learned", learned), ("loader", load), ("abatch", plain)):
        result(
            f"corpus at {tpm:,} tpm, seconds, {label} (vs the least the window allows)",
            f["seconds"],
            least,
            "s",
            "(reported)",
            True,
        )


# -- kill -9 and resume ----------------------------------------------------------------------------


def lines_in(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def caption_command(folder: Path, out: Path, tpm: int) -> list[str]:
    executable = Path(sys.executable).with_name("afarensis-vision")
    return [
        str(executable),
        "caption",
        str(folder),
        "--out",
        str(out),
        "--tpm",
        str(tpm),
        "--concurrency",
        str(CONCURRENCY),
        "--detail",
        "low",
        "--max-tokens",
        str(MAX_TOKENS),
    ]


def kill_and_resume(folder: Path, tpm: int) -> None:
    images = make_images(folder / "resume", RESUME_IMAGES)
    out = folder / "resume.jsonl"
    faults = Faults(latency=RESUME_LATENCY)
    with server_process(counting=True, tokens_per_minute=tpm, faults=faults) as server:
        env = os.environ | {
            "AFARENSIS_API_KEY": server.api_key,
            "AFARENSIS_BASE_URL": server.base_url,
        }
        command = caption_command(folder / "resume", out, tpm)
        began = time.monotonic()
        first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        while lines_in(out) < RESUME_IMAGES // 2 and first.poll() is None:
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_after = time.monotonic() - began
        at_kill = lines_in(out)
        time.sleep(RESUME_LATENCY + 0.5)  # the requests in flight reach the server's count
        before = server.counts()
        second = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        after = server.counts()
    records = [json.loads(line) for line in out.read_text().splitlines()]
    per_source = Counter(r["source"] for r in records)
    every_once = set(per_source) == set(images) and set(per_source.values()) == {1}
    errors = sum(r["error"] is not None for r in records)
    bound = RESUME_IMAGES + CONCURRENCY
    print(
        f"kill -9 and resume: {RESUME_IMAGES} images, caption --tpm {tpm} --concurrency "
        f"{CONCURRENCY}, server latency {RESUME_LATENCY} s"
    )
    print(
        f"  killed after {killed_after:.1f} s with {at_kill} lines written; the server had "
        f"{before.requests} requests ({before.rate_limited} 429s)"
    )
    print(f"  second run: exit {second.returncode}: {second.stdout.strip()}")
    if second.returncode:
        print(second.stderr[-2000:])
    print(
        f"  --out: {len(records)} lines, {len(per_source)} sources, every source exactly once: "
        f"{every_once}, error lines: {errors}"
    )
    print(
        f"  requests the server received over both runs: {after.requests} "
        f"({after.rate_limited} 429s); bound {RESUME_IMAGES} images + {CONCURRENCY} = {bound}"
    )
    result(
        "kill -9 and resume: requests over both runs (vs images + concurrency)",
        after.requests,
        bound,
        "",
        "<= bound, each source once",
        after.requests <= bound and every_once and errors == 0,
    )


def main() -> None:
    flags = [arg for arg in sys.argv[1:] if arg.startswith("--")]
    args = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
    tpm = int(args[0]) if args else 20_000
    multiple = float(args[1]) if len(args) > 1 else 3.0
    print(machine())
    print(f"load average before: {load_average()}")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        if "--resume-only" not in flags:
            rate_sides(folder, tpm, multiple)
        kill_and_resume(folder, tpm)
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
