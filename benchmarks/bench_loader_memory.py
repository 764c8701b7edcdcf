"""Peak memory of ``AfarensisImageLoader.alazy_load`` over 200 photos, against "read all, gather".

Run: ``.venv/bin/python benchmarks/bench_loader_memory.py [images] [rounds]``

The photos: 200 camera-like JPEGs of 2 to 5 MP (1920 x 1080, 2048 x 1536, 2592 x 1944; mild
noise, quality 92) in a temporary directory. Ten distinct pictures are generated and each file
gets its own JPEG comment segment, so every file has its own content digest: nothing is served
from the preparation cache, every image is read, prepared and sent.

Both approaches describe every photo with the same ``ChatAfarensis`` against one
``LocalAfarensisServer(ocr=False)`` in a separate process (see ``_common``), at most 16 images
at once:

* loader: ``AfarensisImageLoader(folder, max_concurrency=16).alazy_load()`` (reads a file only
  when it may be sent, from a sliding window of tasks);
* naive:  read every file into memory, then ``asyncio.gather`` over all of them with an
  ``asyncio.Semaphore(16)`` around ``prepare_image`` (in a thread) + ``ainvoke``: the same
  work, the same concurrency, only the reading differs.

Each run is a fresh child process, so its peak resident set (``getrusage`` ``ru_maxrss``) is
its own; reported as the growth over the process's size before the run. ``tracemalloc``'s
peak counts Python allocations (bytes, strings, JSON bodies) but not Pillow's pixel buffers.
Both run over the first half of the files and over all of them: the loader's peak must not grow
with the number of files (goal: bounded, at most 1.25x from N/2 to N files), while the naive
approach's grows with the bytes it holds.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import struct
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from _common import MAX_TOKENS, jpeg, machine, median, photo, result, server_process
from langchain_core.messages import HumanMessage

from langchain_afarensis_vision import ChatAfarensis
from langchain_afarensis_vision.document_loaders import AfarensisImageLoader
from langchain_afarensis_vision.images import prepare_image

SIZES = ((1920, 1080), (2048, 1536), (2592, 1944))
DISTINCT = 10
CONCURRENCY = 16
QUESTION = "Describe this image for a search index."


def with_comment(data: bytes, text: str) -> bytes:
    """``data`` (a JPEG) with a COM segment after SOI: same pixels, different bytes."""
    comment = text.encode()
    return data[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + data[2:]


def make_photos(folder: Path, count: int) -> int:
    """``count`` distinct-by-digest JPEGs in ``folder``; returns their total size."""
    bases = [
        jpeg(photo(SIZES[index % len(SIZES)], seed_shift=37 * index)) for index in range(DISTINCT)
    ]
    total = 0
    for index in range(count):
        data = with_comment(bases[index % DISTINCT], f"photo {index:04d}")
        (folder / f"IMG_{index:04d}.jpg").write_bytes(data)
        total += len(data)
    return total


def rss_mb() -> float:
    """Peak resident set of this process so far, in MB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def loader_run(model: ChatAfarensis, paths: list[Path]) -> int:
    loader = AfarensisImageLoader(
        paths, llm=model, question=QUESTION, max_concurrency=CONCURRENCY, show_progress=False
    )
    return len([document async for document in loader.alazy_load()])


async def naive_run(model: ChatAfarensis, paths: list[Path]) -> int:
    datas = [path.read_bytes() for path in paths]  # read all ...
    slots = asyncio.Semaphore(CONCURRENCY)

    async def describe(data: bytes) -> str:
        async with slots:
            prepared = await asyncio.to_thread(prepare_image, data)
            image = {"type": "image_url", "image_url": {"url": prepared.data_url}}
            message = HumanMessage(content=[{"type": "text", "text": QUESTION}, image])
            return (await model.ainvoke([message])).text

    return len(await asyncio.gather(*(describe(data) for data in datas)))  # ... then gather


def child(approach: str, paths: list[Path], base_url: str, api_key: str, out: Any) -> None:
    """One measured run in a fresh process: sends (documents, seconds, MB figures) to ``out``."""
    model = ChatAfarensis(base_url=base_url, api_key=api_key, max_tokens=MAX_TOKENS)
    run = loader_run if approach == "loader" else naive_run
    prepare_image(jpeg(photo((64, 48))))  # imports and Pillow plugins loaded before measuring
    before = rss_mb()
    tracemalloc.start()
    began = time.perf_counter()
    documents = asyncio.run(run(model, paths))
    seconds = time.perf_counter() - began
    traced_peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    out.send((documents, seconds, rss_mb() - before, traced_peak))
    out.close()


def measure(approach: str, paths: list[Path], base_url: str, api_key: str) -> tuple[Any, ...]:
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=child, args=(approach, paths, base_url, api_key, sender))
    process.start()
    figures: tuple[Any, ...] = receiver.recv()
    process.join()
    return figures


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    print(machine())
    counts = (count // 2, count)
    runs: dict[tuple[str, int], list[tuple[Any, ...]]] = {}
    with tempfile.TemporaryDirectory() as name, server_process() as server:
        folder = Path(name)
        total = make_photos(folder, count)
        paths = sorted(folder.glob("*.jpg"))
        print(
            f"{count} JPEGs of 2-5 MP ({DISTINCT} pictures, every file distinct), "
            f"{total / 1e6:.0f} MB on disk, max_concurrency {CONCURRENCY}"
        )
        for index in range(rounds):
            for n in counts:
                for approach in ("loader", "naive") if index % 2 == 0 else ("naive", "loader"):
                    figures = measure(approach, paths[:n], server.base_url, server.api_key)
                    if figures[0] != n:
                        raise SystemExit(f"{approach} described {figures[0]} images, not {n}")
                    runs.setdefault((approach, n), []).append(figures)
    summary = {
        key: tuple(median([f[i] for f in figures]) for i in (1, 2, 3))
        for key, figures in runs.items()
    }
    print(f"{rounds} runs each (fresh process per run), medians:")
    print(
        f"  {'':7s} {'files':>5s} {'time':>7s} {'peak RSS growth':>16s} {'tracemalloc peak':>17s}"
    )
    for (approach, n), (seconds, rss, traced) in sorted(summary.items()):
        print(f"  {approach:7s} {n:5d} {seconds:5.1f} s {rss:13.0f} MB {traced:14.0f} MB")
    loader_rss, naive_rss = summary["loader", count][1], summary["naive", count][1]
    growth = loader_rss / summary["loader", counts[0]][1]
    print(
        f"  {count} files: loader / naive peak RSS {loader_rss / naive_rss:.2f}x; loader peak "
        f"from {counts[0]} to {count} files: {growth:.2f}x (naive: "
        f"{naive_rss / summary['naive', counts[0]][1]:.2f}x); the files total {total / 1e6:.0f} MB"
    )
    print(
        "  (tracemalloc sees Python's allocations only; RSS also holds Pillow's pixel buffers "
        "and the allocator's per-thread arenas)"
    )
    goal = "bounded: <= 1.25x at 2x files"
    result(
        f"loader peak RSS, {count} photos (vs read all)",
        loader_rss,
        naive_rss,
        "MB",
        goal,
        growth <= 1.25,
    )


if __name__ == "__main__":
    main()
