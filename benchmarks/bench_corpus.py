"""A corpus run when the rate limit is high: the cores bind. Images per second, CPU per image.

Run: ``.venv/bin/python benchmarks/bench_corpus.py [images]`` (default 60)

``describe_images`` describes ``images`` distinct 12 MP camera-like JPEGs (4032 x 3024) against
the local server (its own process, no limits), with the preparation on threads (``workers=0``)
and on 1 and 2 worker processes. Reported: wall time, images per second, and the client's CPU
milliseconds per image (the server's are not counted).

The CPU: this process's own (``RUSAGE_SELF``: the event loop, requests, threads), plus, with
workers, the worker processes'. Those are children of multiprocessing's forkserver, not of this
process, so ``RUSAGE_CHILDREN`` never sees them; the forkserver reaps them, so once the pool has
shut down (``describe_images`` waits for it) their CPU is in the forkserver's ``cutime`` and
``cstime`` (``/proc/<pid>/stat``). The forkserver is started (with the job's preload) before
anything is timed, and its CPU is read before and after each run. The method is checked first:
a worker burns a known amount of CPU, and the forkserver's count must match it.
"""

from __future__ import annotations

import io
import multiprocessing
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import forkserver
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import load_average, machine, photo, process_cpu, server_process  # noqa: E402

from langchain_afarensis_vision import ChatAfarensis, describe_images  # noqa: E402


def own_cpu() -> float:
    """CPU seconds of this process (all its threads)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def forkserver_cpu() -> float:
    """CPU seconds of the forkserver and of the children it has reaped (the pool's workers)."""
    return process_cpu(forkserver._forkserver._forkserver_pid)  # type: ignore[attr-defined]


def start_forkserver() -> None:
    """The forkserver describe_images would start, started now (so it is not timed)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["langchain_afarensis_vision.images"])
    forkserver.ensure_running()


def burn(seconds: float) -> float:
    """Spin for ``seconds`` of CPU; return this process's CPU seconds so far."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    return time.process_time()


def check_method(seconds: float = 2.0) -> None:
    """A worker of a forkserver pool burns ``seconds``: the forkserver's count must see it."""
    before = forkserver_cpu()
    with ProcessPoolExecutor(1, multiprocessing.get_context("forkserver")) as pool:
        worker = pool.submit(burn, seconds).result()
    counted = forkserver_cpu() - before
    ok = abs(counted - worker) <= 0.05 + 0.05 * worker
    print(
        f"method check: a worker used {worker:.2f} s of CPU (its own process_time); the "
        f"forkserver's utime+stime+cutime+cstime grew by {counted:.2f} s: "
        + ("matches" if ok else "DOES NOT MATCH")
    )


def make_images(folder: Path, count: int) -> list[str]:
    paths = []
    for n in range(count):
        buffer = io.BytesIO()
        photo((4032, 3024), seed_shift=n * 7).save(buffer, "JPEG", quality=92)
        path = folder / f"photo_{n:03d}.jpg"
        path.write_bytes(buffer.getvalue())
        paths.append(str(path))
    return paths


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    print(machine())
    start_forkserver()
    check_method()
    with tempfile.TemporaryDirectory() as folder, server_process() as server:
        images = make_images(Path(folder), count)
        print(f"{count} distinct 12 MP JPEGs, {sum(Path(p).stat().st_size for p in images):,} B")
        llm = ChatAfarensis(base_url=server.base_url, api_key=server.api_key)
        print(f"load average before: {load_average()}")
        for workers in (0, 1, 2):
            out = Path(folder) / f"out_{workers}.jsonl"
            start, cpu, pool = time.monotonic(), own_cpu(), forkserver_cpu()
            summary = describe_images(
                images, out=out, llm=llm, workers=workers, concurrency=8, max_tokens=50
            )
            wall = time.monotonic() - start
            used, in_pool = own_cpu() - cpu, forkserver_cpu() - pool
            kind = "threads" if workers == 0 else f"{workers} worker process(es)"
            per_image = (used + in_pool) / count * 1000
            print(
                f"  {kind:22s} {wall:6.1f} s  {count / wall:5.1f} images/s  CPU "
                f"{per_image:5.1f} ms an image ({used / count * 1000:.1f} in this process, "
                f"{in_pool / count * 1000:.1f} in workers)"
            )
            print(f"    {summary.line()}")
        print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
