"""What the client benchmarks share: the server in its own process, timing, and reporting.

The server: one ``LocalAfarensisServer(ocr=False)`` (uvicorn, as tests and notebooks run it),
started in a *separate process*. The benchmarks measure client cost; with the server in the
client's process both would share one interpreter lock, so the server's CPU would be counted
against whichever client happened to be running, and on a 2-core machine the two processes
each get a core. Every side of a comparison talks to that same server.

Timing: the sides of a comparison are interleaved (A, B, C, A, B, C, ...) over several rounds,
after a warm-up of each, and medians are reported, because measurements on a small shared
machine are noisy.

Reporting: each script prints its results for people, then one ``RESULT {json}`` line per
figure, which ``run_all.py`` collects into its summary table.
"""

from __future__ import annotations

import base64
import io
import json
import multiprocessing
import os
import platform
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from importlib import metadata
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a plain script from a checkout, installed or not

from PIL import Image, ImageChops  # noqa: E402

from langchain_afarensis_vision.images import _preparation  # noqa: E402

FLOWER = ROOT / "tests" / "data" / "images" / "flower.jpg"
MODEL = "gpt-4-vision-preview"
MAX_TOKENS = 300
CAMERA_SIZE = (4032, 3024)
_PACKAGES = (
    "langchain-afarensis-vision",
    "langchain-core",
    "langchain-openai",
    "openai",
    "httpx2",
    "httpx",
    "pillow",
    "uvicorn",
    "starlette",
)


def machine() -> str:
    """One line: cores, Python, and the versions of the packages that matter here."""
    versions = []
    for name in _PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return (
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{sys.version.split()[0]}; " + ", ".join(versions)
    )


def process_cpu(pid: int) -> float:
    """CPU seconds of process ``pid`` and of the children it has reaped (``/proc/<pid>/stat``)."""
    # the fields after "(comm)": state is field 3, utime 14, stime 15, cutime 16, cstime 17
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (the machine may be shared)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# -- the server, in its own process ------------------------------------------------------------


@dataclass(frozen=True)
class ServerCounts:
    """What a counting server process saw on ``POST /v1/chat/completions``.

    ``statuses``: how many answers of each status; ``admitted``: the monotonic time (the clock
    is system-wide on Linux, so comparable with the benchmark's) and the tokens of each request
    the server's tokens-per-minute limiter let through (prompt + ``max_tokens``: what it counts).
    """

    requests: int
    statuses: dict[int, int]
    admitted: list[tuple[float, int]]

    @property
    def rate_limited(self) -> int:
        """The 429 answers."""
        return self.statuses.get(429, 0)

    def tokens(self, since: float = float("-inf"), until: float = float("inf")) -> int:
        """Tokens admitted in ``[since, until)``."""
        return sum(tokens for at, tokens in self.admitted if since <= at < until)

    def best_minute(self) -> int:
        """The most tokens admitted in any 60 s window (the trailing minute of each admission)."""
        stamps = sorted(self.admitted)
        best = total = first = 0
        for at, tokens in stamps:
            total += tokens
            while stamps[first][0] <= at - 60.0:
                total -= stamps[first][1]
                first += 1
            best = max(best, total)
        return best


@dataclass(frozen=True)
class Server:
    """Where the benchmark server listens (and, with ``counting``, what it has seen)."""

    base_url: str
    api_key: str
    connection: Connection | None = None
    pid: int = 0  # the server process (its CPU can be read from /proc/<pid>/stat)

    def counts(self) -> ServerCounts:
        """The chat-completion requests, statuses and admitted tokens counted so far."""
        if self.connection is None:
            raise RuntimeError("the server was started without counting=True")
        self.connection.send("counts")
        requests, statuses, admitted = self.connection.recv()
        return ServerCounts(requests, statuses, admitted)


class _Counting:
    """ASGI middleware counting chat-completion requests and their answers' statuses."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.requests = 0
        self.statuses: Counter[int] = Counter()
        self.admitted: list[tuple[float, int]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/chat/completions":
            await self.app(scope, receive, send)
            return
        with self.lock:
            self.requests += 1

        async def counted(message: Any) -> None:
            if message["type"] == "http.response.start":
                with self.lock:
                    self.statuses[message["status"]] += 1
            await send(message)

        await self.app(scope, receive, counted)

    def count_admissions(self, limiter: Any) -> None:
        """Record each admission of ``limiter.admit_tokens`` (the server's tokens limiter)."""
        admit = limiter.admit_tokens

        def admit_tokens(tokens: int) -> Any:
            state = admit(tokens)  # raises RateLimited when refused: not admitted
            with self.lock:
                self.admitted.append((time.monotonic(), tokens))
            return state

        limiter.admit_tokens = admit_tokens

    def snapshot(self) -> tuple[int, dict[int, int], list[tuple[float, int]]]:
        with self.lock:
            return self.requests, dict(self.statuses), list(self.admitted)


def _serve(conn: Connection, options: dict[str, Any], counting: bool) -> None:
    """The server process: start, report where, serve until told to stop (or orphaned)."""
    from langchain_afarensis_vision.server import LocalAfarensisServer

    server = LocalAfarensisServer(**({"ocr": False} | options))
    counter = None
    if counting:
        counter = _Counting(server.app)
        counter.count_admissions(server.app.state.afarensis.limiter)
        server.app = counter  # type: ignore[assignment]  # any ASGI app serves; state stays put
    server.start()
    conn.send((server.base_url, server.api_key))
    try:
        # blocks (without the GIL) until the parent asks for the counts, says stop or goes away
        while conn.recv() == "counts" and counter is not None:
            conn.send(counter.snapshot())
    except EOFError:
        pass
    finally:
        server.stop()


@contextmanager
def server_process(counting: bool = False, **options: Any) -> Iterator[Server]:
    """A ``LocalAfarensisServer(ocr=False, **options)`` running in a child process.

    ``options`` may turn OCR on (``ocr=True``): then the server's describe reads text in images.

    ``counting``: count chat-completion requests, statuses and admitted tokens in the server
    process (``Server.counts()``); off by default, as it adds a little to every request.
    """
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(child, options, counting), daemon=True)
    process.start()
    child.close()
    try:
        if not parent.poll(60):
            raise RuntimeError("the benchmark server did not start within 60 s")
        base_url, api_key = parent.recv()
        yield Server(base_url, api_key, parent if counting else None, process.pid or 0)
    finally:
        with suppress(OSError):
            parent.send("stop")
        process.join(10)
        if process.is_alive():
            process.terminate()
            process.join(5)
        parent.close()


# -- timing ------------------------------------------------------------------------------------


@dataclass
class Samples:
    """Seconds per call of each side: wall-clock, and this process's CPU (all its threads)."""

    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]


def interleaved(
    runs: dict[str, Callable[[], object]], rounds: int, calls: int = 1, warmup: int = 3
) -> Samples:
    """Time each side: ``rounds`` rounds, each timing ``calls`` back-to-back calls per side.

    Each sample is the mean of ``calls`` calls; the sides take turns, round by round, and the
    order rotates so that no side always runs first.
    """
    names = list(runs)
    for name in names:
        for _ in range(warmup):
            runs[name]()
    samples = Samples({name: [] for name in names}, {name: [] for name in names})
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            run = runs[name]
            began, cpu_began = time.perf_counter(), time.process_time()
            for _ in range(calls):
                run()
            samples.cpu[name].append((time.process_time() - cpu_began) / calls)
            samples.wall[name].append((time.perf_counter() - began) / calls)
    return samples


def median(values: list[float]) -> float:
    """The median (of a non-empty list)."""
    return statistics.median(values)


# -- reporting ---------------------------------------------------------------------------------


def result(
    figure: str,
    ours: float,
    other: float,
    unit: str,
    goal: str,
    met: bool,
    ratio: float | None = None,
) -> None:
    """Print one ``RESULT`` line for ``run_all.py``: a figure of ours beside another's."""
    record = {
        "figure": figure,
        "ours": ours,
        "other": other,
        "unit": unit,
        "ratio": ratio if ratio is not None else (ours / other if other else float("nan")),
        "goal": goal,
        "met": met,
    }
    print("RESULT " + json.dumps(record), flush=True)


# -- images ------------------------------------------------------------------------------------


class PrepareCounter:
    """Counts and times ``_preparation._prepare``: the work done on a preparation-cache miss."""

    def __init__(self) -> None:
        self.calls = 0
        self.seconds = 0.0
        self._original = _preparation._prepare

    def __enter__(self) -> PrepareCounter:
        original = self._original

        def counted(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.calls += 1
                self.seconds += time.perf_counter() - began

        setattr(_preparation, "_prepare", counted)  # noqa: B010
        return self

    def __exit__(self, *exc_info: object) -> None:
        setattr(_preparation, "_prepare", self._original)  # noqa: B010


def photo(size: tuple[int, int], sigma: float = 10.0, seed_shift: int = 0) -> Image.Image:
    """flower.jpg scaled to ``size`` with mild per-channel sensor noise (as bench_prepare_image).

    ``seed_shift`` rolls the picture sideways so that photos of one size can differ in content.
    """
    base = Image.open(FLOWER).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    if seed_shift:
        base = ImageChops.offset(base, seed_shift, seed_shift // 2)
    grain = Image.merge("RGB", [Image.effect_noise(size, sigma) for _ in range(3)])
    return ImageChops.add(base, grain, scale=1.0, offset=-128)


def jpeg(image: Image.Image, quality: int = 92) -> bytes:
    """``image`` as JPEG bytes."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def camera_jpeg() -> bytes:
    """A realistic 12 MP camera photo: 4032 x 3024, mild noise, JPEG quality 92."""
    return jpeg(photo(CAMERA_SIZE))


def b64(data: bytes) -> str:
    """Standard base64 text of ``data``."""
    return base64.b64encode(data).decode("ascii")


def upload_seconds(body_bytes: float, mbit_per_s: float = 20.0) -> float:
    """Seconds to upload ``body_bytes`` at ``mbit_per_s`` (transfer only, no latency)."""
    return body_bytes * 8 / (mbit_per_s * 1e6)


def bare_request(base_url: str, api_key: str, question: str) -> tuple[str, bytes, dict[str, str]]:
    """The URL, prebuilt JSON body and headers of a text question, for the bare-client sides."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": question}],
        "max_tokens": MAX_TOKENS,
    }
    headers = {"authorization": f"Bearer {api_key}", "content-type": "application/json"}
    return base_url + "/chat/completions", json.dumps(body, separators=(",", ":")).encode(), headers
