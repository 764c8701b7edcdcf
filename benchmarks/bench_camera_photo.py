"""A 12 MP camera photo end to end: ChatAfarensis against ChatOpenAI, time and bytes on the wire.

Run: ``.venv/bin/python benchmarks/bench_camera_photo.py [rounds]``

The photo: ``flower.jpg`` scaled to 4032 x 3024 with mild sensor noise, JPEG quality 92, in a
file (what a phone gives you). One ``LocalAfarensisServer(ocr=False)`` runs in a separate
process (see ``_common``). Each timed call starts from the file on disk and ends with the
answer; both sides are given the same thing, the way a user writes it:

* ours:          file -> base64 -> ``{"type": "image", "base64": ..., "mime_type":
  "image/jpeg"}`` -> ``ChatAfarensis.invoke`` (which prepares the image: 1024 x 768 JPEG, the
  size the model sees at ``auto``); the preparation cache is cleared before every call, so
  each call pays for preparing a photo it has never seen;
* ours (path):   ``prepare_image(path).data_url`` as an ``image_url`` (the README's local-file
  way; cache cleared too), for reference;
* ChatOpenAI:    file -> base64 -> ``{"type": "image_url", "image_url": {"url":
  "data:image/jpeg;base64,..."}}`` -> ``ChatOpenAI.invoke``: the raw photo goes out;
* prepare only:  ``prepare_image(path)`` with the cache cleared, no request: the part of ours
  that is Pillow's decode (DCT-scaled to 1/2), Lanczos resize and encode (for the breakdown).

On loopback the upload is free, and the local server reads the raw photo cheaply (its checks
decode a JPEG at 1/8 scale), so the raw photo costs ChatOpenAI little more than copying bytes
while ours pays for a full-quality resize to the size the model sees.

Same question, same ``max_tokens`` 300; the server bills both the same image tokens (checked).
Bytes on the wire are the request bodies, counted by an event hook on each side's HTTP client
(on separate, untimed calls). Upload time at 20 Mbit/s is modelled from those bytes: a
loopback call plus the transfer time of its body.

Goals: ours faster than ChatOpenAI even on loopback, and at most 1/10 of its bytes.
"""

from __future__ import annotations

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
    machine,
    median,
    result,
    server_process,
    upload_seconds,
)
from langchain_core.messages import AIMessage, HumanMessage
from langchain_openai import ChatOpenAI

from langchain_afarensis_vision import ChatAfarensis
from langchain_afarensis_vision.images import clear_cache, prepare_image

QUESTION = "What's in this image?"
MBIT = 20.0


def ours_message(path: Path) -> HumanMessage:
    data = b64(path.read_bytes())
    image = {"type": "image", "base64": data, "mime_type": "image/jpeg"}
    return HumanMessage(content=[{"type": "text", "text": QUESTION}, image])


def ours_path_message(path: Path) -> HumanMessage:
    url = prepare_image(path).data_url
    image = {"type": "image_url", "image_url": {"url": url}}
    return HumanMessage(content=[{"type": "text", "text": QUESTION}, image])


def openai_message(path: Path) -> HumanMessage:
    url = "data:image/jpeg;base64," + b64(path.read_bytes())
    image = {"type": "image_url", "image_url": {"url": url}}
    return HumanMessage(content=[{"type": "text", "text": QUESTION}, image])


def body_sizes(base_url: str, api_key: str, path: Path) -> dict[str, int]:
    """Request-body bytes of each side, seen by an event hook on its HTTP client."""
    sizes: dict[str, int] = {}

    def hook(name: str) -> Callable[[Any], None]:
        def record(request: Any) -> None:
            sizes[name] = len(request.content)

        return record

    ours_client = httpx2.Client(event_hooks={"request": [hook("ours")]})
    openai_client = httpx.Client(event_hooks={"request": [hook("ChatOpenAI")]})
    ours = ChatAfarensis(
        base_url=base_url, api_key=api_key, max_tokens=MAX_TOKENS, http_client=ours_client
    )
    openai = ChatOpenAI(
        base_url=base_url,
        api_key=api_key,
        model=MODEL,
        max_tokens=MAX_TOKENS,
        http_client=openai_client,
    )
    clear_cache()
    ours_answer = ours.invoke([ours_message(path)])
    openai_answer = openai.invoke([openai_message(path)])
    check_same_cost(ours_answer, openai_answer)
    ours_client.close()
    openai_client.close()
    return sizes


def check_same_cost(ours: AIMessage, openai: AIMessage) -> None:
    """Both requests must cost the same prompt tokens: the model sees the same image size."""
    a, b = ours.usage_metadata, openai.usage_metadata
    if a is None or b is None or a["input_tokens"] != b["input_tokens"]:
        raise SystemExit(f"different prompt tokens: ours {a}, ChatOpenAI {b}")
    print(f"prompt tokens billed: {a['input_tokens']} on both sides")
    print(f"  ours answer:       {ours.text[:110]}...")
    print(f"  ChatOpenAI answer: {openai.text[:110]}...")


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    print(machine())
    data = camera_jpeg()
    with tempfile.TemporaryDirectory() as folder, server_process() as server:
        path = Path(folder) / "IMG_0001.jpg"
        path.write_bytes(data)
        print(f"photo: 4032x3024 JPEG q92, {len(data):,} bytes ({len(b64(data)):,} in base64)")
        sizes = body_sizes(server.base_url, server.api_key, path)
        ours = ChatAfarensis(
            base_url=server.base_url, api_key=server.api_key, max_tokens=MAX_TOKENS
        )
        openai = ChatOpenAI(
            base_url=server.base_url,
            api_key=server.api_key,
            model=MODEL,
            max_tokens=MAX_TOKENS,
        )

        def ours_call() -> object:
            clear_cache()
            return ours.invoke([ours_message(path)])

        def ours_path_call() -> object:
            clear_cache()
            return ours.invoke([ours_path_message(path)])

        def prepare_only() -> object:
            clear_cache()
            return prepare_image(path)

        samples = interleaved(
            {
                "ours": ours_call,
                "ours (path)": ours_path_call,
                "ChatOpenAI": lambda: openai.invoke([openai_message(path)]),
                "prepare only": prepare_only,
            },
            rounds,
            warmup=2,
        )
        ours.close()
    ms = {name: median(values) * 1000 for name, values in samples.wall.items()}
    cpu = {name: median(values) * 1000 for name, values in samples.cpu.items()}
    sizes["ours (path)"] = sizes["ours"]  # the same prepared JPEG, the same body
    sizes["prepare only"] = 0
    print(f"end to end on loopback, {rounds} interleaved rounds, medians per call:")
    print(
        f"  {'':11s} {'loopback':>10s} {'client CPU':>11s} {'body bytes':>12s} {'@20 Mbit/s':>11s}"
    )
    modelled = {name: ms[name] + upload_seconds(sizes[name], MBIT) * 1000 for name in ms}
    for name in ms:
        print(
            f"  {name:11s} {ms[name]:8.1f} ms {cpu[name]:8.1f} ms {sizes[name]:12,d} "
            f"{modelled[name]:8.0f} ms"
        )
    print(
        f"  breakdown: prepare_image alone {ms['prepare only']:.1f} ms of ours' "
        f"{ms['ours']:.1f} ms; ChatOpenAI's client CPU {cpu['ChatOpenAI']:.1f} ms, the rest of its "
        f"{ms['ChatOpenAI']:.1f} ms ({ms['ChatOpenAI'] - cpu['ChatOpenAI']:.1f} ms) is the server "
        "reading the raw photo and answering"
    )
    speed = ms["ours"] / ms["ChatOpenAI"]
    share = sizes["ours"] / sizes["ChatOpenAI"]
    print(f"  ours / ChatOpenAI: time {speed:.2f}x on loopback (goal < 1x)")
    print(f"  ours / ChatOpenAI: bytes {share:.3f}x = 1/{1 / share:.0f} (goal <= 1/10)")
    print(
        f"  at {MBIT:.0f} Mbit/s upload (modelled): ours {modelled['ours']:.0f} ms, ChatOpenAI "
        f"{modelled['ChatOpenAI']:.0f} ms ({modelled['ChatOpenAI'] / modelled['ours']:.1f}x faster)"
    )
    result(
        "12 MP photo, loopback time (vs ChatOpenAI)",
        ms["ours"],
        ms["ChatOpenAI"],
        "ms",
        "< 1x",
        speed < 1,
    )
    result(
        "12 MP photo, bytes sent (vs ChatOpenAI)",
        sizes["ours"],
        sizes["ChatOpenAI"],
        "B",
        "<= 0.1x",
        share <= 0.1,
    )
    result(
        "12 MP photo, 20 Mbit/s time (vs ChatOpenAI)",
        modelled["ours"],
        modelled["ChatOpenAI"],
        "ms",
        "< 1x",
        modelled["ours"] < modelled["ChatOpenAI"],
    )


if __name__ == "__main__":
    main()
