"""A 20-step screenshot agent: what every model call costs without, with "last 3", with a budget.

Run: ``.venv/bin/python benchmarks/bench_image_budget.py [turns]``

The agent of ``tests/_agent_loop.py``: ``create_agent`` with a ``take_screenshot`` tool that
returns a 1920 x 1080 PNG (a synthetic app window, different at every step; 1105 tokens at
``auto`` detail, sent as a 1365 x 768 PNG). Its model is scripted (a screenshot at each step,
then a final answer: ``turns + 1`` model calls), but each call is really sent by
``ChatAfarensis`` to one ``LocalAfarensisServer(ocr=False)`` in a separate process (see
``_common``), which counts its prompt tokens. Three sides, run one after the other:

* none:    no middleware: every call re-sends every earlier screenshot;
* last 3:  ``ContextEditingMiddleware`` with a fixed "keep the last 3 images" edit
  (:class:`KeepLastImages`, below): older images are dropped from their tool messages,
  leaving their text, as other agent frameworks do;
* budget:  ``ContextEditingMiddleware(edits=[ImageBudgetEdit(max_image_tokens=4_500,
  keep_detail=3)])``: the 3 newest at their detail, older ones at low detail while 4,500
  tokens last, the oldest as a line of text;
* budget 3315: ``ImageBudgetEdit(max_image_tokens=3_315, keep_detail=2)``: the image tokens
  of "last 3" (3 x 1105), spent on 2 screenshots at their detail and up to 13 at low detail.

Reported: prompt tokens (the server's count, summed over the calls) and request-body bytes
(an event hook on the HTTP client), per call and in all; what each call received (images at
their detail, at low detail, and images dropped or stubbed); and the ``prepare_image`` work done
on cache misses (the preparation cache is cleared before each side); last, the time
``ImageBudgetEdit.apply`` takes on the last call's history (median of 7, cache warm). Tokens
and bytes are deterministic; times are printed for information only. The answers' quality
cannot be measured offline: the per-call table says what the model still receives.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx2
from _common import PrepareCounter, machine, result, server_process
from langchain.agents.middleware import AgentMiddleware, ContextEditingMiddleware
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, ToolMessage

from langchain_afarensis_vision import ImageBudgetEdit, images
from tests._agent_loop import ScriptedOverHttp, body_images, plan, run_agent, screenshot_block

BUDGETS = {
    "budget": ImageBudgetEdit(max_image_tokens=4_500, keep_detail=3),
    "budget 3315": ImageBudgetEdit(max_image_tokens=3_315, keep_detail=2),
}
SIDES = ("none", "last 3", *BUDGETS)


@dataclass(slots=True)
class KeepLastImages:
    """The fixed policy of other frameworks: only the ``keep`` newest images are sent."""

    keep: int = 3

    def apply(
        self, messages: list[AnyMessage], *, count_tokens: Callable[[Sequence[BaseMessage]], int]
    ) -> None:
        seen = 0
        for index in range(len(messages) - 1, -1, -1):
            content = messages[index].content
            if isinstance(content, str):
                continue
            kept: list[str | dict[Any, Any]] = []
            for block in reversed(content):
                if isinstance(block, dict) and block.get("type") in {"image", "image_url"}:
                    seen += 1
                    if seen > self.keep:
                        continue
                kept.append(block)
            if len(kept) != len(content):
                messages[index] = messages[index].model_copy(update={"content": kept[::-1]})


@dataclass
class Call:
    """One model call: its request body's size and images, and the server's token count."""

    body_bytes: int
    details: list[str]
    prompt_tokens: int = 0


@dataclass
class Side:
    calls: list[Call] = field(default_factory=list)
    prepares: int = 0
    seconds: float = 0.0


def middleware(side: str) -> list[AgentMiddleware[Any, Any, Any]]:
    if side == "none":
        return []
    edit = KeepLastImages(3) if side == "last 3" else BUDGETS[side]
    return [ContextEditingMiddleware(edits=[edit])]


def run_side(side: str, base_url: str, api_key: str, turns: int) -> Side:
    out = Side()

    def record(request: Any) -> None:
        if request.url.path.endswith("/chat/completions"):
            body = request.content
            out.calls.append(Call(len(body), [i["detail"] for i in body_images(body)]))

    images.clear_cache()
    with httpx2.Client(event_hooks={"request": [record]}) as client:
        model = ScriptedOverHttp(
            base_url=base_url,
            api_key=api_key,
            max_retries=0,
            max_tokens=50,
            script=plan(turns),
            http_client=client,
        )
        began = time.perf_counter()
        with PrepareCounter() as counter:
            messages = run_agent(model, middleware(side))
        out.seconds = time.perf_counter() - began
        out.prepares = counter.calls
    answers = [m for m in messages if isinstance(m, AIMessage)]
    assert len(answers) == len(out.calls) == turns + 1, (len(answers), len(out.calls))
    for call, answer in zip(out.calls, answers, strict=True):
        assert answer.usage_metadata is not None
        call.prompt_tokens = answer.usage_metadata["input_tokens"]
    return out


def received(side: str, call: Call, index: int) -> str:
    """What call ``index`` (0-based) received: images at detail, at low detail, and the rest."""
    full = call.details.count("auto") + call.details.count("high")
    low = call.details.count("low")
    gone = index - full - low  # call k follows k screenshots
    word = "dropped" if side == "last 3" else "stub"
    return f"{full} full, {low} low" + (f", {gone} {word}" if gone else "")


def report(sides: dict[str, Side], turns: int) -> None:
    print(f"{turns}-step screenshot agent (1920 x 1080 PNG a step), {turns + 1} model calls:")
    print("  per call: prompt tokens, request kB, the earlier screenshots it received")
    header = "".join(f" | {name:>11s} {'kB':>6s} {'receives':>24s}" for name in SIDES)
    print(f"  call{header}")
    for index in range(turns + 1):
        row = ""
        for name in SIDES:
            call = sides[name].calls[index]
            what = received(name, call, index)
            row += f" | {call.prompt_tokens:11,d} {call.body_bytes / 1000:6,.0f} {what:>24s}"
        print(f"  {index + 1:4d}{row}")
    totals = {n: sum(c.prompt_tokens for c in s.calls) for n, s in sides.items()}
    sizes = {n: sum(c.body_bytes for c in s.calls) for n, s in sides.items()}
    for name, side in sides.items():
        print(
            f"  {name:>11s}: {totals[name]:9,d} prompt tokens, {sizes[name]:12,d} bytes sent, "
            f"last call {side.calls[-1].prompt_tokens:6,d} tokens; prepare_image work "
            f"{side.prepares} time(s); {side.seconds:.1f} s"
        )
    for name in SIDES[1:]:
        print(
            f"  {name} vs none: {totals[name] / totals['none']:.3f}x the tokens, "
            f"{sizes[name] / sizes['none']:.3f}x the bytes"
        )
    result(
        f"{turns}-step screenshot agent: prompt tokens, budget vs none",
        totals["budget"],
        totals["none"],
        "tokens",
        "less than none",
        totals["budget"] < totals["none"],
    )
    result(
        f"{turns}-step screenshot agent: bytes sent, budget vs none",
        sizes["budget"],
        sizes["none"],
        "bytes",
        "less than none",
        sizes["budget"] < sizes["none"],
    )
    result(
        f"{turns}-step screenshot agent: prompt tokens, budget vs last 3",
        totals["budget"],
        totals["last 3"],
        "tokens",
        "(reported)",
        True,
    )


def edit_ms(turns: int) -> float:
    """Median ms of ``ImageBudgetEdit.apply`` on the history of the last call (cache warm)."""
    history: list[AnyMessage] = [HumanMessage("go")]
    for step, call in enumerate(plan(turns)[:-1], 1):
        history += [call, ToolMessage(content=screenshot_block(step), tool_call_id=f"call_{step}")]
    edit = BUDGETS["budget"]
    edit(history)  # the low-detail versions, prepared once
    seconds = []
    for _ in range(7):
        messages = list(history)
        began = time.perf_counter()
        edit.apply(messages, count_tokens=len)
        seconds.append(time.perf_counter() - began)
    return sorted(seconds)[3] * 1000


def main() -> None:
    turns = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    print(machine())
    for name, edit in BUDGETS.items():
        print(
            f"{name}: ImageBudgetEdit(max_image_tokens={edit.max_image_tokens:,}, "
            f"keep_detail={edit.keep_detail})"
        )
    with server_process() as server:
        warm = run_side("budget", server.base_url, server.api_key, 2)  # imports, pools
        assert len(warm.calls) == 3
        sides = {name: run_side(name, server.base_url, server.api_key, turns) for name in SIDES}
    report(sides, turns)
    print(
        f"  ImageBudgetEdit.apply on the last call's {turns} screenshots: {edit_ms(turns):.1f} ms"
    )


if __name__ == "__main__":
    main()
