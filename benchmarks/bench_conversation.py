"""A 10-turn conversation about one 12 MP photo: prepared once, not ten times.

Run: ``.venv/bin/python benchmarks/bench_conversation.py [rounds] [turns]``

Agent loops and chat UIs re-send the whole history every turn, so the photo in the first user
message goes out again on every turn. Each side holds its own history (its own answers
appended) and sends it ``turns`` times, a new short question each turn:

* ours:        the photo as ``{"type": "image", "base64": ..., "mime_type": "image/jpeg"}``;
  ``ChatAfarensis`` prepares it on the first turn (1024 x 768 JPEG) and finds it in its
  cache, by content digest and detail, on the others;
* ChatOpenAI:  the photo as a ``data:image/jpeg;base64,...`` ``image_url``: the raw photo is
  sent on every turn.

Preparation work is counted by wrapping ``images._prepare`` (the decode-resize-encode step that
runs only on a cache miss), so a "prepared once" claim is counted, not inferred from timings.
The preparation cache is cleared before each conversation. One ``LocalAfarensisServer(ocr=False)``
in a separate process (see ``_common``); conversations of the two sides alternate, ``rounds``
each; per-turn medians. Bytes are the request bodies (event hooks on both HTTP clients).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import httpx2
from _common import (
    MAX_TOKENS,
    MODEL,
    PrepareCounter,
    b64,
    camera_jpeg,
    machine,
    median,
    result,
    server_process,
    upload_seconds,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_openai import ChatOpenAI

from langchain_afarensis_vision import ChatAfarensis, images

QUESTIONS = [
    "What's in this image?",
    "What are the main colours?",
    "Is it bright or dark?",
    "Is there any text in it?",
    "What is in the top left corner?",
    "Would it make a good phone wallpaper?",
    "How big is it?",
    "Describe the light.",
    "Give it a short title.",
    "Summarise what you said.",
]


def conversation(
    model: BaseChatModel, image: dict[str, Any], turns: int, on_turn: Callable[[], None]
) -> list[float]:
    """Seconds of each turn of a conversation that re-sends its whole history."""
    history: list[BaseMessage] = []
    seconds = []
    for turn in range(turns):
        question = QUESTIONS[turn % len(QUESTIONS)]
        if turn == 0:
            history.append(HumanMessage(content=[{"type": "text", "text": question}, image]))
        else:
            history.append(HumanMessage(content=question))
        began = time.perf_counter()
        answer = model.invoke(history)
        seconds.append(time.perf_counter() - began)
        history.append(answer)
        on_turn()
    return seconds


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    turns = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    print(machine())
    photo = b64(camera_jpeg())
    ours_image = {"type": "image", "base64": photo, "mime_type": "image/jpeg"}
    openai_image = {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + photo}}
    sizes: dict[str, list[int]] = {"ours": [], "ChatOpenAI": []}

    def hook(name: str) -> Callable[[Any], None]:
        def record(request: Any) -> None:
            sizes[name].append(len(request.content))

        return record

    per_turn: dict[str, list[list[float]]] = {"ours": [], "ChatOpenAI": []}
    prepares: list[int] = []
    prepare_seconds: list[float] = []
    with server_process() as server:
        ours = ChatAfarensis(
            base_url=server.base_url,
            api_key=server.api_key,
            max_tokens=MAX_TOKENS,
            http_client=httpx2.Client(event_hooks={"request": [hook("ours")]}),
        )
        openai = ChatOpenAI(
            base_url=server.base_url,
            api_key=server.api_key,
            model=MODEL,
            max_tokens=MAX_TOKENS,
            http_client=httpx.Client(event_hooks={"request": [hook("ChatOpenAI")]}),
        )
        conversation(ours, ours_image, 2, lambda: None)  # warm-up: imports, pools, caches
        conversation(openai, openai_image, 2, lambda: None)
        for index in range(rounds):
            for name in ("ours", "ChatOpenAI") if index % 2 == 0 else ("ChatOpenAI", "ours"):
                sizes[name].clear()
                if name == "ours":
                    images.clear_cache()
                    with PrepareCounter() as counter:
                        per_turn[name].append(conversation(ours, ours_image, turns, lambda: None))
                    prepares.append(counter.calls)
                    prepare_seconds.append(counter.seconds)
                else:
                    per_turn[name].append(conversation(openai, openai_image, turns, lambda: None))
    report(per_turn, sizes, prepares, prepare_seconds, rounds, turns)


def report(
    per_turn: dict[str, list[list[float]]],
    sizes: dict[str, list[int]],
    prepares: list[int],
    prepare_seconds: list[float],
    rounds: int,
    turns: int,
) -> None:
    turn_ms = {
        name: [median([run[t] for run in runs]) * 1000 for t in range(turns)]
        for name, runs in per_turn.items()
    }
    total_ms = {name: median([sum(run) for run in runs]) * 1000 for name, runs in per_turn.items()}
    total_bytes = {name: sum(values) for name, values in sizes.items()}
    print(
        f"{turns}-turn conversation re-sending one 12 MP photo, {rounds} conversations a side, "
        "medians per turn (loopback):"
    )
    print(f"  turn {'ours':>9s} {'ChatOpenAI':>11s} {'ours body':>11s} {'ChatOpenAI body':>16s}")
    for t in range(turns):
        print(
            f"  {t + 1:4d} {turn_ms['ours'][t]:6.1f} ms {turn_ms['ChatOpenAI'][t]:8.1f} ms "
            f"{sizes['ours'][t]:11,d} {sizes['ChatOpenAI'][t]:16,d}"
        )
    later = {name: median(values[1:]) for name, values in turn_ms.items()}
    print(
        f"  prepare_image work (decode/resize/encode on a cache miss): {max(prepares)} time(s) per "
        f"conversation in every one of {len(prepares)} conversations, "
        f"{median(prepare_seconds) * 1000:.1f} ms; turns 2-{turns}: cache hits"
    )
    print(
        f"  turns 2-{turns}: ours {later['ours']:.1f} ms, ChatOpenAI {later['ChatOpenAI']:.1f} ms "
        "a turn (median); ours still decodes the photo's base64 and hashes it (SHA-256) each "
        "turn to find it in the cache"
    )
    print(
        f"  whole conversation: ours {total_ms['ours']:.0f} ms, ChatOpenAI "
        f"{total_ms['ChatOpenAI']:.0f} ms; bytes ours {total_bytes['ours']:,}, ChatOpenAI "
        f"{total_bytes['ChatOpenAI']:,} ({total_bytes['ours'] / total_bytes['ChatOpenAI']:.3f}x)"
    )
    modelled = {
        name: total_ms[name] + upload_seconds(total_bytes[name]) * 1000 for name in total_ms
    }
    print(
        f"  at 20 Mbit/s upload (modelled): ours {modelled['ours'] / 1000:.1f} s, ChatOpenAI "
        f"{modelled['ChatOpenAI'] / 1000:.1f} s"
    )
    once = max(prepares) == 1 and min(prepares) == 1
    result("10 turns: prepare_image runs (vs turns)", max(prepares), turns, "", "== 1", once)
    t_ratio = total_ms["ours"] / total_ms["ChatOpenAI"]
    result(
        "10 turns, loopback time (vs ChatOpenAI)",
        total_ms["ours"],
        total_ms["ChatOpenAI"],
        "ms",
        "< 1x",
        t_ratio < 1,
    )
    b_ratio = total_bytes["ours"] / total_bytes["ChatOpenAI"]
    result(
        "10 turns, bytes sent (vs ChatOpenAI)",
        total_bytes["ours"],
        total_bytes["ChatOpenAI"],
        "B",
        "<= 0.1x",
        b_ratio <= 0.1,
    )


if __name__ == "__main__":
    main()
