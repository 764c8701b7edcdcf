"""How fast is prepare_image on camera-sized inputs, against naive Pillow and against the floor?

Run: ``.venv/bin/python benchmarks/bench_prepare_image.py [rounds]``

For each input (a realistic 12 MP camera JPEG, a 12 MP PNG, a 20000 x 400 panorama) it times,
interleaved over several rounds (median reported):

* ours:  ``prepare_image(data)`` with the cache cleared each round (hashing, checks, orientation,
  draft, resize, encode: everything a caller pays);
* naive: ``Image.open(...).convert("RGB").resize(target, LANCZOS)`` with no draft, then encoding
  to the same format as ours;
* floor: ``Image.open`` + ``draft`` (DCT-scaled decode) + ``resize`` to the target with the
  filter ours uses + ``save`` in the format and with the settings ours sends (JPEG quality 90,
  PNG compress_level 3), all by plain Pillow: the least a Pillow-based preparation can cost.

The goal is on **CPU time per image** (every thread of the process counted), not wall time:
speed for users comes from many images at once on many cores, so a preparation that spread one
image over threads would only look faster on an idle machine. Wall time is printed beside it.
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import PIL
from PIL import Image, ImageChops

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a plain script from a checkout, installed or not

from langchain_afarensis_vision._api.contract import effective_size  # noqa: E402
from langchain_afarensis_vision.images import clear_cache, prepare_image  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import result  # noqa: E402

FLOWER = ROOT / "tests" / "data" / "images" / "flower.jpg"
GOAL = 1.15
RESAMPLE = Image.Resampling.LANCZOS
REDUCING_GAP = 1.5
OUTPUT_OPTIONS = {"JPEG": {"quality": 90}, "PNG": {"compress_level": 3}}


def photo(size: tuple[int, int], sigma: float = 10.0) -> Image.Image:
    """flower.jpg scaled up to ``size`` with mild per-channel sensor noise."""
    base = Image.open(FLOWER).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    grain = Image.merge("RGB", [Image.effect_noise(size, sigma) for _ in range(3)])
    return ImageChops.add(base, grain, scale=1.0, offset=-128)


def encode(image: Image.Image, fmt: str, **options: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def inputs() -> dict[str, bytes]:
    camera = photo((4032, 3024))
    return {
        "12 MP camera JPEG (4032x3024, q92)": encode(camera, "JPEG", quality=92),
        "12 MP PNG (4032x3024)": encode(camera, "PNG"),
        "panorama JPEG (20000x400, q92)": encode(photo((20000, 400)), "JPEG", quality=92),
    }


def ours(data: bytes) -> Callable[[], object]:
    def run() -> object:
        clear_cache()
        return prepare_image(data)

    return run


def naive(data: bytes, target: tuple[int, int], fmt: str) -> Callable[[], object]:
    def run() -> object:
        image = Image.open(io.BytesIO(data)).convert("RGB").resize(target, Image.Resampling.LANCZOS)
        return encode(image, fmt, **({"quality": 90} if fmt == "JPEG" else {}))

    return run


def floor(data: bytes, target: tuple[int, int], fmt: str) -> Callable[[], object]:
    def run() -> object:
        image = Image.open(io.BytesIO(data))
        drafted = image.draft("RGB", target)
        box = drafted[1] if drafted else None
        small = image.resize(target, RESAMPLE, box=box, reducing_gap=REDUCING_GAP)
        return encode(small, fmt, **OUTPUT_OPTIONS[fmt])

    return run


def median_ms(
    runs: dict[str, Callable[[], object]], rounds: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall and CPU milliseconds of each run (CPU counts every thread of the process)."""
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():  # warm-up
        run()
    for _ in range(rounds):
        for name, run in runs.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            run()
            wall[name].append((time.perf_counter() - start) * 1000)
            cpu[name].append((time.process_time() - cpu_start) * 1000)
    return (
        {name: statistics.median(values) for name, values in wall.items()},
        {name: statistics.median(values) for name, values in cpu.items()},
    )


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    print(f"Pillow {PIL.__version__}, {rounds} interleaved rounds, medians")
    for label, data in inputs().items():
        with Image.open(io.BytesIO(data)) as image:
            size, fmt = image.size, image.format or "?"
        target = effective_size(*size, "auto")
        clear_cache()
        prepared = prepare_image(data)
        out_fmt = prepared.mime_type.split("/")[1].upper()
        ms, cpu = median_ms(
            {
                "ours": ours(data),
                "naive": naive(data, target, out_fmt),
                "floor": floor(data, target, out_fmt),
            },
            rounds,
        )
        mp = size[0] * size[1] / 1e6
        print(f"\n{label}: {fmt} {size[0]}x{size[1]} ({mp:.1f} MP) -> {prepared!r}")
        print(f"  bytes: raw {len(data):,} -> prepared {len(prepared.data):,}")
        for name, value in ms.items():
            print(
                f"  {name:5s} {value:8.1f} ms  {mp / value * 1000:7.1f} MP/s  "
                f"(CPU {cpu[name]:6.1f} ms)"
            )
        ratio = cpu["ours"] / cpu["floor"]
        print(
            f"  ours/floor CPU = {ratio:.2f}x (wall {ms['ours'] / ms['floor']:.2f}x)   "
            f"naive/ours CPU = {cpu['naive'] / cpu['ours']:.2f}x"
        )
        result(
            f"prepare_image {label.split(' (')[0]} CPU (vs floor)",
            cpu["ours"],
            cpu["floor"],
            "ms",
            f"<= {GOAL}x",
            ratio <= GOAL,
        )


if __name__ == "__main__":
    main()
