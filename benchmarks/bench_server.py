"""How cheap is the local Afarensis server? Start/stop time, requests/s, and per-request latency.

Run: ``.venv/bin/python benchmarks/bench_server.py [seconds] [concurrency]``

The server runs in this process (``LocalAfarensisServer``, uvicorn in a thread, as tests and
notebooks use it); the load comes from a separate process, so that client and server do not
share one interpreter lock. Every request is a small image request: a 64 x 64 PNG as a data URL
at detail ``low`` plus a short question, the answer limited to 300 tokens.

* start / stop: wall time of ``start()`` (bind, thread, uvicorn ready) and ``stop()``;
* latency: one client, one request at a time, for a second: the median and 95th percentile of
  the round trip (the time the server adds to a client's call, HTTP included);
* throughput: ``concurrency`` async httpx2 clients for ``seconds``, as fast as answers come.
"""

from __future__ import annotations

import asyncio
import base64
import io
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a plain script from a checkout, installed or not

import httpx2  # noqa: E402
from PIL import Image  # noqa: E402

from langchain_afarensis_vision.server import LocalAfarensisServer  # noqa: E402


def payload() -> dict[str, Any]:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (40, 120, 200)).save(buffer, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    return {
        "model": "gpt-4-vision-preview",
        "max_tokens": 300,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
                ],
            }
        ],
    }


async def _latencies(base_url: str, key: str, seconds: float) -> list[float]:
    body, headers = payload(), {"authorization": f"Bearer {key}"}
    times: list[float] = []
    async with httpx2.AsyncClient(base_url=base_url, headers=headers) as client:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            response = await client.post("/chat/completions", json=body)
            times.append(time.perf_counter() - began)
            response.raise_for_status()
    return times


async def _throughput(base_url: str, key: str, seconds: float, concurrency: int) -> int:
    body, headers = payload(), {"authorization": f"Bearer {key}"}
    deadline = time.perf_counter() + seconds
    counts = [0] * concurrency

    async def worker(index: int) -> None:
        async with httpx2.AsyncClient(base_url=base_url, headers=headers) as client:
            while time.perf_counter() < deadline:
                response = await client.post("/chat/completions", json=body)
                response.raise_for_status()
                counts[index] += 1

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return sum(counts)


def load(base_url: str, key: str, seconds: float, concurrency: int, out: Any) -> None:
    """The load generator (a child process): sends its results through ``out``."""
    latencies = asyncio.run(_latencies(base_url, key, 1.0))
    began = time.perf_counter()
    done = asyncio.run(_throughput(base_url, key, seconds, concurrency))
    out.send((latencies, done, time.perf_counter() - began))
    out.close()


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    server = LocalAfarensisServer(ocr=False)
    server.start()
    try:
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(
            target=load, args=(server.base_url, server.api_key, seconds, concurrency, sender)
        )
        child.start()
        latencies, done, elapsed = receiver.recv()
        child.join()
    finally:
        server.stop()
    latencies.sort()
    p95 = latencies[int(len(latencies) * 0.95)]
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print("request: 64x64 PNG data URL, detail low, max_tokens 300 (OCR off)")
    start, stop = server.start_seconds or 0.0, server.stop_seconds or 0.0
    print(f"start: {start * 1000:.1f} ms   stop: {stop * 1000:.1f} ms")
    print(
        f"latency (1 client, sequential, {len(latencies)} requests): "
        f"median {statistics.median(latencies) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms"
    )
    print(
        f"throughput ({concurrency} concurrent async clients, {elapsed:.1f} s): "
        f"{done / elapsed:.0f} requests/s ({done} requests)"
    )


if __name__ == "__main__":
    main()
