"""The image budget's promises, on generated histories (hypothesis).

Histories mix user messages and tool results holding images (URLs of known or unknown size,
inline PNGs of several sizes, in several dialects, at every detail) under random settings. For
each: the earlier images received never cost more than ``max_image_tokens`` (counted exactly),
nor number more than ``max_images``; no more than ``keep_detail`` keep their detail; an older
image never gets more detail than a newer one, and once one is stubbed every older one is; the
latest user turn is the same objects; messages keep their number, types and tool call ids;
the input is not modified; and applying the budget to its own output changes nothing.
"""

from __future__ import annotations

import base64
import copy
import io
from functools import cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from PIL import Image

from langchain_afarensis_vision import ImageBudgetEdit
from langchain_afarensis_vision.middleware._policy import find_images, latest_user_turn

PROFILE = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
SIZES = ((64, 64), (600, 400), (1024, 1024), (1920, 1080))
URL = "https://images.example/{}.png"


@cache
def png(size: tuple[int, int], shade: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, (shade, 80, 160)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@st.composite
def image_blocks(draw: st.DrawFn) -> dict[str, Any]:
    detail = draw(st.sampled_from([None, "low", "high", "auto"]))
    if draw(st.booleans()):
        url = URL.format(draw(st.integers(0, 5)))
        block: dict[str, Any] = {"type": "image_url", "image_url": {"url": url}}
        if detail:
            block["image_url"]["detail"] = detail
        return block
    data = png(draw(st.sampled_from(SIZES)), draw(st.integers(0, 3)))
    if draw(st.booleans()):
        url = "data:image/png;base64," + data
        return {"type": "image_url", "image_url": {"url": url, "detail": detail or "auto"}}
    extras = {"detail": detail} if detail else {}
    return {"type": "image", "base64": data, "mime_type": "image/png", "extras": extras}


@st.composite
def histories(draw: st.DrawFn) -> list[AnyMessage]:
    history: list[AnyMessage] = []
    for step in range(draw(st.integers(1, 8))):
        blocks: list[str | dict[str, Any]] = [{"type": "text", "text": f"step {step}"}]
        blocks += draw(st.lists(image_blocks(), max_size=3))
        if draw(st.booleans()):
            history.append(HumanMessage(content=blocks))
            if draw(st.booleans()):  # else the next user message is of the same turn
                history.append(AIMessage(content=f"seen {step}"))
        else:
            call = {"name": "look", "args": {"name": f"img_{step}.png"}, "id": f"c{step}"}
            history.append(AIMessage(content="", tool_calls=[call]))
            history.append(ToolMessage(content=blocks, tool_call_id=f"c{step}", name="look"))
    if draw(st.booleans()):
        history.append(
            HumanMessage(content=[{"type": "text", "text": "now?"}, draw(image_blocks())])
        )
    return history


edits = st.builds(
    ImageBudgetEdit,
    max_image_tokens=st.integers(0, 6_000),
    detail_tokens=st.none() | st.integers(0, 6_000),
    keep_detail=st.none() | st.integers(0, 4),
    max_images=st.none() | st.integers(0, 10),
    image_sizes=st.sampled_from([{}, {URL.format(i): (300 * i + 1, 900) for i in range(6)}]),
)


def ranks(messages: list[AnyMessage], edit: ImageBudgetEdit) -> dict[tuple[int, int], str]:
    """(message, block) -> the detail of each image found, newest first."""
    return {(f.message, f.block): f.part.detail for f in find_images(messages, edit.policy())}


@PROFILE
@given(history=histories(), edit=edits)
def test_the_budget_holds_its_promises(history: list[AnyMessage], edit: ImageBudgetEdit) -> None:
    before = copy.deepcopy(history)
    out = edit(history)
    assert history == before
    assert edit(out) == out
    assert [type(m) for m in out] == [type(m) for m in history]
    for a, b in zip(history, out, strict=True):
        if isinstance(a, ToolMessage):
            assert isinstance(b, ToolMessage)
            assert a.tool_call_id == b.tool_call_id
        if not isinstance(a.content, str):
            assert len(a.content) == len(b.content)  # blocks are replaced in place
    for latest in latest_user_turn(history):
        assert out[latest] is history[latest]

    policy = edit.policy()
    received = find_images(out, policy)
    assert sum(f.tokens for f in received) <= edit.max_image_tokens
    if edit.max_images is not None:
        assert len(received) <= edit.max_images
    after = ranks(out, edit)
    if edit.keep_detail is not None:
        assert sum(detail != "low" for detail in after.values()) <= edit.keep_detail
    # Newest first: at their detail, then at low detail, then stubbed; never back.
    stubbed = downgraded = False
    for image in find_images(history, policy):
        where = (image.message, image.block)
        if where not in after:
            stubbed = True
            continue
        assert not stubbed, "an image older than a stubbed one was sent"
        if after[where] == "low":
            downgraded = downgraded or image.part.detail != "low"
        else:
            assert not downgraded, "an image older than a downgraded one kept its detail"
