"""A 12 MP camera photo end to end on shaped links, measured: ChatAfarensis against ChatOpenAI.

Run: ``.venv/bin/python benchmarks/bench_camera_photo.py [rounds]`` (as root, or where
unprivileged user namespaces are allowed).

The photo: ``flower.jpg`` scaled to 4032 x 3024 with mild sensor noise, JPEG quality 92, in a
file (what a phone gives you). Each timed call starts from the file on disk and ends with the
answer; both sides are given the same thing, the way a user writes it:

* ours:        file -> base64 -> ``{"type": "image", "base64": ..., "mime_type": "image/jpeg"}``
  -> ``ChatAfarensis.invoke``, which prepares the image (a 1024 x 768 JPEG, the size the model
  sees at ``auto``); the preparation cache is cleared before every call, so each call pays for
  preparing a photo it has never seen;
* ChatOpenAI:  file -> base64 -> ``{"type": "image_url", "image_url": {"url":
  "data:image/jpeg;base64,..."}}`` -> langchain-openai ``ChatOpenAI.invoke``: the raw photo.

Same question, same ``max_tokens`` 300; the server bills both the same image tokens (checked).
Bytes on the wire are the request bodies, counted by an event hook on each side's HTTP client.

The links are real, not modelled. The script re-runs itself under ``unshare -n`` (``-rn`` when
not root): a private network namespace whose loopback, the only link the client and the local
server share, is set to MTU 1500 (a real link's) and shaped with a token bucket, ``tc qdisc
replace dev lo root tbf rate <R>mbit burst 64kb latency 50ms`` (a burst under 64 KB stalls
large packets). Inside it, one ``LocalAfarensisServer(ocr=False)`` runs in its own process (see
``_common``) and both sides are timed, interleaved, at 20, 100 and 1000 Mbit/s, then at 2000
and 5000 Mbit/s and unshaped (MTU 1500, no qdisc) to find where ChatOpenAI catches up: the
crossover rate, interpolated linearly in 1/rate (a call's time is a fixed part plus its bytes
over the rate) between the two measured rates that bracket it. Where ``unshare``, ``ip`` or
``tc`` is missing or not permitted, the script says so and measures only the bytes, on the
plain loopback: it never models a link.

The plain loopback is no goal any more: the local server reads a raw photo at 1/8 scale, which
no preparing client can beat on a link with no cost. Goals: at 100 Mbit/s ours takes at most
0.25x ChatOpenAI's time, and sends at most 1/10 of its bytes.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import httpx2
from _common import (
    MAX_TOKENS,
    MODEL,
    b64,
    camera_jpeg,
    interleaved,
    load_average,
    machine,
    median,
    result,
    server_process,
)
from langchain_core.messages import AIMessage, HumanMessage
from langchain_openai import ChatOpenAI

from langchain_afarensis_vision import ChatAfarensis
from langchain_afarensis_vision.images import clear_cache

QUESTION = "What's in this image?"
INSIDE = "--in-namespace"
RATES: tuple[int | None, ...] = (20, 100, 1000, 2000, 5000, None)
"""Mbit/s, None for the unshaped loopback: the issue's three, then more to find the crossover."""
GOAL_RATE = 100
GOAL = 0.25
SHAPE = "tc qdisc replace dev lo root tbf rate {rate}mbit burst 64kb latency 50ms"
SETUP = ("ip link set lo mtu 1500 up", SHAPE.format(rate=100))


def ours_message(path: Path) -> HumanMessage:
    data = b64(path.read_bytes())
    image = {"type": "image", "base64": data, "mime_type": "image/jpeg"}
    return HumanMessage(content=[{"type": "text", "text": QUESTION}, image])


def openai_message(path: Path) -> HumanMessage:
    url = "data:image/jpeg;base64," + b64(path.read_bytes())
    image = {"type": "image_url", "image_url": {"url": url}}
    return HumanMessage(content=[{"type": "text", "text": QUESTION}, image])


def clients(base_url: str, api_key: str, **http: Any) -> tuple[ChatAfarensis, ChatOpenAI]:
    ours = ChatAfarensis(
        base_url=base_url, api_key=api_key, max_tokens=MAX_TOKENS, http_client=http.get("ours")
    )
    openai = ChatOpenAI(
        base_url=base_url,
        api_key=api_key,
        model=MODEL,
        max_tokens=MAX_TOKENS,
        http_client=http.get("openai"),
    )
    return ours, openai


def body_sizes(base_url: str, api_key: str, path: Path) -> dict[str, int]:
    """Request-body bytes of each side, seen by an event hook on its HTTP client."""
    sizes: dict[str, int] = {}

    def hook(name: str) -> Callable[[Any], None]:
        def record(request: Any) -> None:
            sizes[name] = len(request.content)

        return record

    ours_client = httpx2.Client(event_hooks={"request": [hook("ours")]})
    openai_client = httpx.Client(event_hooks={"request": [hook("ChatOpenAI")]})
    ours, openai = clients(base_url, api_key, ours=ours_client, openai=openai_client)
    clear_cache()
    check_same_cost(ours.invoke([ours_message(path)]), openai.invoke([openai_message(path)]))
    ours_client.close()
    openai_client.close()
    return sizes


def check_same_cost(ours: AIMessage, openai: AIMessage) -> None:
    """Both requests must cost the same prompt tokens: the model sees the same image size."""
    a, b = ours.usage_metadata, openai.usage_metadata
    if a is None or b is None or a["input_tokens"] != b["input_tokens"]:
        raise SystemExit(f"different prompt tokens: ours {a}, ChatOpenAI {b}")
    print(f"prompt tokens billed: {a['input_tokens']} on both sides")


def namespace_command() -> tuple[list[str] | None, str]:
    """``unshare`` and its options if a shaped private loopback works here, or why not."""
    missing = [tool for tool in ("unshare", "ip", "tc") if shutil.which(tool) is None]
    if missing:
        return None, f"{', '.join(missing)} not found"
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    probe = subprocess.run(
        [*unshare, "sh", "-c", " && ".join(SETUP)], capture_output=True, text=True, check=False
    )
    if probe.returncode:
        why = (probe.stderr.strip() or f"exit {probe.returncode}").splitlines()[-1]
        return None, f"{' '.join(unshare)} with ip and tc failed here: {why}"
    return unshare, ""


def shape(rate: int | None) -> None:
    """Shape the namespace's loopback at ``rate`` Mbit/s (None: no qdisc, just MTU 1500)."""
    if rate is None:
        subprocess.run(
            ["tc", "qdisc", "del", "dev", "lo", "root"], capture_output=True, check=False
        )
    else:
        subprocess.run(SHAPE.format(rate=rate).split(), check=True)


def label(rate: int | None) -> str:
    return "unshaped" if rate is None else f"{rate} Mbit/s"


def crossover(times: dict[int | None, tuple[float, float]]) -> str:
    """Where ChatOpenAI's time meets ours: interpolated in 1/rate between bracketing rates."""
    points = [(0.0 if r is None else 1 / r, r, ours - other) for r, (ours, other) in times.items()]
    points.sort(reverse=True)  # slowest link first
    for (x1, r1, d1), (x2, r2, d2) in itertools.pairwise(points):
        if d1 < 0 <= d2:
            x = x1 + (0 - d1) * (x2 - x1) / (d2 - d1)
            where = f"{1 / x:,.0f} Mbit/s" if x > 0 else "beyond any shaped rate"
            return (
                f"crossover: {where}, interpolated linearly in 1/rate between the measured "
                f"{label(r1)} (ours {d1:+.0f} ms) and {label(r2)} (ours {d2:+.0f} ms)"
            )
    if all(d < 0 for _, _, d in points):
        return "crossover: none measured: ours is faster at every rate, unshaped included"
    return "crossover: none measured: ChatOpenAI is faster at every rate"


def measure(rounds: int) -> None:
    """Inside the namespace: the server, the bytes, then both sides at every rate."""
    print(machine())
    subprocess.run(SETUP[0].split(), check=True)
    data = camera_jpeg()
    with tempfile.TemporaryDirectory() as folder, server_process() as server:
        path = Path(folder) / "IMG_0001.jpg"
        path.write_bytes(data)
        print(f"photo: 4032x3024 JPEG q92, {len(data):,} bytes ({len(b64(data)):,} in base64)")
        shape(None)
        sizes = body_sizes(server.base_url, server.api_key, path)
        ours, openai = clients(server.base_url, server.api_key)

        def ours_call() -> object:
            clear_cache()
            return ours.invoke([ours_message(path)])

        times: dict[int | None, tuple[float, float]] = {}
        cpu: dict[int | None, float] = {}
        print(f"load average before: {load_average()}")
        for rate in RATES:
            shape(rate)
            runs = {"ours": ours_call, "ChatOpenAI": lambda: openai.invoke([openai_message(path)])}
            samples = interleaved(runs, rounds, warmup=1)
            times[rate] = (
                median(samples.wall["ours"]) * 1000,
                median(samples.wall["ChatOpenAI"]) * 1000,
            )
            cpu[rate] = median(samples.cpu["ours"]) * 1000
            print(
                f"  {label(rate)}: ours {times[rate][0]:.0f} ms, ChatOpenAI {times[rate][1]:.0f} ms"
            )
        ours.close()
    print(f"load average after: {load_average()} (the machine may be shared)")
    report(sizes, times, cpu, rounds)


def report(
    sizes: dict[str, int],
    times: dict[int | None, tuple[float, float]],
    cpu: dict[int | None, float],
    rounds: int,
) -> None:
    print(
        f"\nmeasured on a shaped private loopback, {rounds} interleaved rounds, medians per call:"
    )
    print(
        f"  {'link':>12s} {'ours':>9s} {'ChatOpenAI':>11s} {'ours/ChatOpenAI':>16s} "
        f"{'ours client CPU':>16s}"
    )
    rows = []
    for rate, (ours, other) in times.items():
        print(
            f"  {label(rate):>12s} {ours:6.0f} ms {other:8.0f} ms {ours / other:15.2f}x "
            f"{cpu[rate]:13.0f} ms"
        )
        rows.append({"link": label(rate), "ours_ms": ours, "openai_ms": other})
    cross = crossover(times)
    print(f"  {cross}")
    share = sizes["ours"] / sizes["ChatOpenAI"]
    print(
        f"  body bytes: ours {sizes['ours']:,}, ChatOpenAI {sizes['ChatOpenAI']:,} "
        f"({share:.3f}x = 1/{1 / share:.0f})"
    )
    print("SHAPED " + json.dumps({"rows": rows, "crossover": cross}), flush=True)
    ours, other = times[GOAL_RATE]
    result(
        f"12 MP photo at {GOAL_RATE} Mbit/s, measured (vs ChatOpenAI)",
        ours,
        other,
        "ms",
        f"<= {GOAL}x",
        ours <= GOAL * other,
    )
    bytes_result(sizes)


def bytes_result(sizes: dict[str, int]) -> None:
    share = sizes["ours"] / sizes["ChatOpenAI"]
    result(
        "12 MP photo, bytes sent (vs ChatOpenAI)",
        sizes["ours"],
        sizes["ChatOpenAI"],
        "B",
        "<= 0.1x",
        share <= 0.1,
    )


def bytes_only() -> None:
    """Without a shaped link: the bytes each side sends, on the plain loopback; no times."""
    print(machine())
    data = camera_jpeg()
    with tempfile.TemporaryDirectory() as folder, server_process() as server:
        path = Path(folder) / "IMG_0001.jpg"
        path.write_bytes(data)
        sizes = body_sizes(server.base_url, server.api_key, path)
    print(f"body bytes: ours {sizes['ours']:,}, ChatOpenAI {sizes['ChatOpenAI']:,}")
    bytes_result(sizes)


def main() -> None:
    args = [a for a in sys.argv[1:] if a != INSIDE]
    rounds = int(args[0]) if args else 7
    if INSIDE in sys.argv:
        measure(rounds)
        return
    unshare, why = namespace_command()
    if unshare is None:
        print(f"shaped links: SKIPPED: {why}; no times are reported (none are modelled)")
        print("SHAPED " + json.dumps({"skipped": why}), flush=True)
        bytes_only()
        return
    done = subprocess.run([*unshare, sys.executable, __file__, INSIDE, str(rounds)], check=False)
    sys.exit(done.returncode)


if __name__ == "__main__":
    main()
