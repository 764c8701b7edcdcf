"""describe_dataset on Ray: throughput where the cores bind, and Ray Data's HTTP stage beside it.

Run: ``.venv/bin/python benchmarks/bench_ray.py [photos] [small]`` (default 40, 120; about 6
minutes; 0 skips a part). Needs the ``ray`` extra, and ``aiohttp`` for Ray Data's HTTP stage.

**Cores bind** (no rate limit; the local server in its own process): ``photos`` distinct
12 MP camera-like JPEGs described at detail ``auto`` (each prepared to 1024 x 768) by

* the single-machine corpus job, ``describe_images`` on 1 and 2 worker processes, and
* ``describe_dataset`` on a local Ray started with ``num_cpus`` 1 and 2 (the preparation is a
  CPU task per block; the request actors take no CPU),

reporting wall time and images per second, and Ray's fixed costs: ``ray.init`` and the time to
the first described row.

**The limit binds** (a fresh local server in its own process for each side, limited to ``TPM``
tokens a minute, counting every answer's status there): ``small`` distinct 256 x 192 PNGs at
detail ``low`` (85 image tokens, the question and its framing, plus ``max_tokens`` 60 a request:
about two minutes of the limit) through

* ``describe_dataset`` with its shared budget (limits learned from the headers),
* Ray Data's ``HttpRequestProcessorConfig`` with its defaults (no ``qps``) and 5 retries,
* the same with ``qps=1`` per worker, one worker (its ``qps`` is a whole number: 60 requests a
  minute is the nearest it gets to the limit),

reporting time, 429 answers, and rows that came back without a description (lost).
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import ray  # noqa: E402
from _common import (  # noqa: E402
    MODEL,
    Server,
    b64,
    load_average,
    machine,
    photo,
    result,
    server_process,
)
from PIL import Image  # noqa: E402

from langchain_afarensis_vision import ChatAfarensis, describe_images  # noqa: E402
from langchain_afarensis_vision.ray import RateBudget, describe_dataset  # noqa: E402

TPM = 12_000
MAX_TOKENS = 60
QUESTION = "What is in this image?"


def make_photos(folder: Path, count: int) -> None:
    for n in range(count):
        buffer = io.BytesIO()
        photo((4032, 3024), seed_shift=n * 7).save(buffer, "JPEG", quality=92)
        (folder / f"photo_{n:03d}.jpg").write_bytes(buffer.getvalue())


def make_small(folder: Path, count: int) -> None:
    for n in range(count):
        color = (n % 256, (n * 7) % 256, (n * 13) % 256)
        Image.new("RGB", (256, 192), color).save(folder / f"img_{n:03d}.png")


def start_ray(cpus: int) -> float:
    began = time.monotonic()
    ray.init(
        num_cpus=cpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        configure_logging=False,
        log_to_driver=False,
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    return time.monotonic() - began


def cores_bind(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, server_process() as server:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        make_photos(folder, count)
        llm = ChatAfarensis(base_url=server.base_url, api_key=server.api_key)
        rates: dict[str, float] = {}
        for workers in (1, 2):
            began = time.monotonic()
            summary = describe_images(
                [folder], out=Path(tmp) / f"out{workers}.jsonl", llm=llm, workers=workers,
                concurrency=8, max_tokens=MAX_TOKENS,
            )  # fmt: skip
            took = time.monotonic() - began
            rates[f"corpus job, {workers} worker(s)"] = count / took
            print(
                f"  corpus job, {workers} worker process(es): {took:6.1f} s, "
                f"{count / took:5.1f} images/s  ({summary.line()})"
            )
        for cpus in (1, 2):
            init = start_ray(cpus)
            began = time.monotonic()
            ds = ray.data.read_binary_files(str(folder), override_num_blocks=count // 4)
            rows = describe_dataset(ds, llm=llm, max_tokens=MAX_TOKENS, batch_size=4)
            first = None
            described = 0
            for row in rows.iter_rows():
                first = first or time.monotonic() - began
                described += row["error"] is None
            took = time.monotonic() - began
            ray.shutdown()
            rates[f"Ray, {cpus} CPU(s)"] = count / took
            steady = (count - 1) / max(took - (first or 0), 1e-9)
            print(
                f"  Ray, num_cpus={cpus}: ray.init {init:4.1f} s, first row {first or 0:4.1f} s, "
                f"all {took:6.1f} s, {count / took:5.1f} images/s ({steady:5.1f}/s after the "
                f"first row), {described} described"
            )
        for cpus in (1, 2):
            ours, theirs = rates[f"Ray, {cpus} CPU(s)"], rates[f"corpus job, {cpus} worker(s)"]
            result(
                f"Ray images/s, {cpus} CPU(s), vs the corpus job", ours, theirs, "images/s",
                "reported", True,
            )  # fmt: skip


def limited(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "small"
        folder.mkdir()
        make_small(folder, count)
        start_ray(2)
        sides: dict[str, dict[str, int] | None] = {"describe_dataset (budget learned)": None}
        sides["HTTP stage, defaults + 5 retries"] = {"max_retries": 5}
        sides["HTTP stage, qps=1, 1 worker, 5 retries"] = {"max_retries": 5, "qps": 1}
        outcome: dict[str, tuple[int, int]] = {}  # side -> (429s, rows not described)
        for name, http in sides.items():
            # A fresh server each side (an empty window), counting answers in its own process.
            with server_process(counting=True, tokens_per_minute=TPM) as server:
                began = time.monotonic()
                described, error = _side(server, folder, http)
                took = time.monotonic() - began
                counts = server.counts()
            outcome[name] = (counts.rate_limited, count - described)
            print(
                f"  {name}: {took:6.1f} s, {counts.requests} requests, {counts.rate_limited} "
                f"429s, {count - described} of {count} rows not described{error}"
            )
        ray.shutdown()
        ours = outcome["describe_dataset (budget learned)"]
        for name, (limited_, lost) in outcome.items():
            if name.startswith("HTTP"):
                result(f"429s vs {name}", ours[0], limited_, "429s", "fewer", ours[0] <= limited_)
                result(f"rows not described vs {name}", ours[1], lost, "rows", "0", ours[1] == 0)


def _side(server: Server, folder: Path, http: dict[str, int] | None) -> tuple[int, str]:
    """Describe the folder through ours (``http`` None) or Ray Data's HTTP stage.

    Returns the rows described and, if the run failed, how.
    """
    from ray.data.llm import HttpRequestProcessorConfig, build_processor

    ds = ray.data.read_binary_files(str(folder), override_num_blocks=8)
    try:
        if http is None:
            llm = ChatAfarensis(base_url=server.base_url, api_key=server.api_key)
            out = describe_dataset(
                ds, llm=llm, detail="low", max_tokens=MAX_TOKENS, budget=RateBudget(),
                question=QUESTION,
            )  # fmt: skip
            return sum(row["error"] is None for row in out.take_all()), ""
        config = HttpRequestProcessorConfig(
            url=f"{server.base_url}/chat/completions",
            headers={"Authorization": f"Bearer {server.api_key}"},
            concurrency=1, batch_size=16, **http,
        )  # fmt: skip
        processor = build_processor(
            config,
            preprocess=lambda row: {"payload": _payload(row["bytes"])},
            postprocess=lambda row: {"described": "choices" in row["http_response"]},
        )
        return sum(bool(row["described"]) for row in processor(ds).take_all()), ""
    except Exception as failure:
        return 0, f" - the run failed: {type(failure).__name__}: {str(failure)[:120]}"


def _payload(data: bytes) -> dict[str, Any]:
    url = f"data:image/png;base64,{b64(data)}"
    image = {"type": "image_url", "image_url": {"url": url, "detail": "low"}}
    content = [{"type": "text", "text": QUESTION}, image]
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": MAX_TOKENS,
    }


def main() -> None:
    photos = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    small = int(sys.argv[2]) if len(sys.argv) > 2 else 120
    print(machine(), f"load average {load_average()}")
    if photos:
        print(f"Cores bind: {photos} distinct 12 MP JPEGs, no rate limit")
        cores_bind(photos)
    if small:
        print(f"The limit binds: {small} small PNGs at detail low, {TPM:,} tokens a minute")
        limited(small)


if __name__ == "__main__":
    main()
