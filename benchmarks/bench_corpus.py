"""A corpus run when the rate limit is high: the cores bind. Images per second, CPU per image.

Run: ``.venv/bin/python benchmarks/bench_corpus.py [images]`` (default 60)

``describe_images`` describes ``images`` distinct 12 MP camera-like JPEGs (4032 x 3024) against
the local server (its own process, no limits), with the preparation on threads (``workers=0``)
and on 1 and 2 worker processes. Reported: wall time and images per second; and, for threads
(where every CPU second is this process's), CPU seconds per image. The worker processes are
children of the pool's forkserver, so this process's rusage does not see their CPU.
"""

from __future__ import annotations

import io
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import machine, photo, server_process  # noqa: E402

from langchain_afarensis_vision import ChatAfarensis, describe_images  # noqa: E402


def cpu_seconds() -> float:
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


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
    with tempfile.TemporaryDirectory() as folder, server_process() as server:
        images = make_images(Path(folder), count)
        print(f"{count} distinct 12 MP JPEGs, {sum(Path(p).stat().st_size for p in images):,} B")
        llm = ChatAfarensis(base_url=server.base_url, api_key=server.api_key)
        for workers in (0, 1, 2):
            out = Path(folder) / f"out_{workers}.jsonl"
            start, cpu = time.monotonic(), cpu_seconds()
            summary = describe_images(
                images, out=out, llm=llm, workers=workers, concurrency=8, max_tokens=50
            )
            wall, used = time.monotonic() - start, cpu_seconds() - cpu
            kind = "threads" if workers == 0 else f"{workers} worker process(es)"
            own = f"CPU {used / count * 1000:5.1f} ms an image" if workers == 0 else ""
            print(f"  {kind:22s} {wall:6.1f} s  {count / wall:5.1f} images/s  {own}")
            print(f"    {summary.line()}")


if __name__ == "__main__":
    main()
