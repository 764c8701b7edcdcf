"""The image budget on hand-built histories: what each model call would receive."""

from __future__ import annotations

import base64
import copy
import io
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from PIL import Image

from langchain_afarensis_vision import ImageBudgetEdit, apply_image_budget
from langchain_afarensis_vision.chat_models._messages import ImageOptions, to_wire_messages
from langchain_afarensis_vision.errors import InvalidRequestError
from langchain_afarensis_vision.images import _preparation
from langchain_afarensis_vision.middleware import _policy
from langchain_afarensis_vision.middleware._policy import Policy, find_images

SIDE = 1024  # 1024 x 1024 at auto detail: 4 tiles, 765 tokens; at low detail: 85
FULL = 765
LOW = 85
URL_BOUND = 1445


def png(shade: int, size: tuple[int, int] = (SIDE, SIDE)) -> bytes:
    buffer = io.BytesIO()
    colour = (shade % 256, 255 - shade % 256, 128 + shade // 256)  # distinct up to 32,767
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def v1_block(shade: int) -> dict[str, Any]:
    return {"type": "image", "base64": b64(png(shade)), "mime_type": "image/png"}


def screenshot_turn(n: int, block: dict[str, Any] | None = None) -> list[AnyMessage]:
    """One agent step: a call to take_screenshot and its tool message holding the image."""
    call_id = f"call_{n}"
    call = AIMessage(
        content="",
        tool_calls=[{"name": "take_screenshot", "args": {"name": f"shot_{n}.png"}, "id": call_id}],
    )
    image = block if block is not None else v1_block(n * 10)
    result = ToolMessage(
        content=[{"type": "text", "text": f"Screenshot {n}"}, image],
        tool_call_id=call_id,
        name="take_screenshot",
    )
    return [call, result]


def agent_history(turns: int, **blocks: dict[str, Any]) -> list[AnyMessage]:
    history: list[AnyMessage] = [
        SystemMessage("You operate a computer."),
        HumanMessage("Book a table for two."),
    ]
    for n in range(1, turns + 1):
        history += screenshot_turn(n, blocks.get(f"turn{n}"))
    return history


def received(messages: list[AnyMessage]) -> list[tuple[str, int]]:
    """(detail or 'stub', tokens) of each earlier image a call receives, newest first."""
    policy = ImageBudgetEdit().policy()
    return [(f.part.detail, f.tokens) for f in find_images(messages, policy)]


def image_cost(messages: list[AnyMessage], policy: Policy | None = None) -> int:
    return sum(f.tokens for f in find_images(messages, policy or ImageBudgetEdit().policy()))


def stubs(messages: list[AnyMessage]) -> list[str]:
    return [
        block["text"].lstrip("\n")
        for m in messages
        if isinstance(m.content, list)
        for block in m.content
        if isinstance(block, dict)
        and block.get("text", "").lstrip("\n").startswith("[An image was")
    ]


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    _preparation.clear_cache()
    yield
    _preparation.clear_cache()


# -- budgets and counts ----------------------------------------------------------------------------


def test_without_pressure_nothing_changes() -> None:
    history = agent_history(3)
    out = apply_image_budget(history, max_image_tokens=10_000)
    assert out == history
    assert all(a is b for a, b in zip(out, history, strict=True))  # not even copied


def test_newest_at_detail_older_at_low_oldest_stubbed() -> None:
    history = agent_history(6)
    assert image_cost(history) == 6 * FULL
    # detail budget 1600: the two newest (1530); then low while the whole budget lasts.
    out = apply_image_budget(history, max_image_tokens=1_800, detail_tokens=1_600)
    assert received(out) == [("auto", FULL)] * 2 + [("low", LOW)] * 3
    assert image_cost(out) == 2 * FULL + 3 * LOW <= 1_800
    assert len(stubs(out)) == 1
    assert stubs(out)[0] == (
        "[An image was here (inline image, 1024x1024); left out to keep the context small.]"
    )


def test_default_detail_budget_is_half_the_budget() -> None:
    out = apply_image_budget(agent_history(6), max_image_tokens=2_000)
    # half is 1,000: one image at detail (765), then 1,235 tokens left for low ones.
    assert received(out) == [("auto", FULL)] + [("low", LOW)] * 5


@pytest.mark.parametrize("budget", [0, 84, 500, 765, 1_000, 2_000, 4_000, 10_000])
def test_the_budget_is_never_exceeded(budget: int) -> None:
    out = apply_image_budget(agent_history(8), max_image_tokens=budget)
    assert image_cost(out) <= budget
    assert len(received(out)) + len(stubs(out)) == 8


def test_keep_detail_counts_images() -> None:
    out = apply_image_budget(agent_history(6), max_image_tokens=8_000, keep_detail=3)
    assert received(out) == [("auto", FULL)] * 3 + [("low", LOW)] * 3


def test_max_images_counts_all_images() -> None:
    out = apply_image_budget(agent_history(6), max_image_tokens=8_000, keep_detail=2, max_images=3)
    assert received(out) == [("auto", FULL)] * 2 + [("low", LOW)]
    assert len(stubs(out)) == 3


def test_an_older_image_never_gets_more_detail_than_a_newer_one() -> None:
    small = {"type": "image", "base64": b64(png(7, (200, 100))), "mime_type": "image/png"}
    history = agent_history(4, turn2=small)
    out = apply_image_budget(history, max_image_tokens=3_000, detail_tokens=1_000)
    # newest (765) fits the detail budget; turn 3 does not (765 > 235), so the small one of
    # turn 2 (255 tokens at auto) goes low too, though 255 would have fit.
    assert received(out) == [("auto", FULL), ("low", LOW), ("low", LOW), ("low", LOW)]


# -- forms of images -------------------------------------------------------------------------------


def test_every_image_form_is_counted_and_downgraded() -> None:
    data = png(40)
    prepared = _preparation.prepare_image(png(50), "high")
    text = b64(data)
    anthropic = {"type": "base64", "media_type": "image/png", "data": text}
    forms: dict[str, dict[str, Any]] = {
        "turn1": {"type": "image_url", "image_url": {"url": "data:image/png;base64," + text}},
        "turn2": {"type": "image", "base64": text, "mime_type": "image/png", "extras": {}},
        "turn3": {"type": "image", "source_type": "base64", "data": text, "mime_type": "image/png"},
        "turn4": {"type": "image", "source": anthropic},
        "turn5": prepared.content_block(),
    }
    history = agent_history(6, **forms)
    assert image_cost(history) == 6 * FULL
    out = apply_image_budget(history, max_image_tokens=1_500, keep_detail=1)
    assert received(out) == [("auto", FULL)] + [("low", LOW)] * 5
    wire = to_wire_messages(out, ImageOptions())
    urls = [
        part["image_url"]
        for m in wire
        if isinstance(m.get("content"), list)
        for part in m["content"]
        if part["type"] == "image_url"
    ]
    assert [u["detail"] for u in urls] == ["low"] * 5 + ["auto"]
    for url in urls[:5]:  # sent at the low effective size: 512 x 512
        raw = base64.b64decode(url["url"].partition(",")[2])
        assert Image.open(io.BytesIO(raw)).size == (512, 512)


def test_url_images_cost_the_upper_bound_unless_their_size_is_known() -> None:
    url = "https://images.example/photo.jpg"
    forms: dict[str, dict[str, Any]] = {
        "turn1": {"type": "image_url", "image_url": {"url": url, "detail": "high"}},
        "turn2": {"type": "image", "url": url + "?2"},
    }
    history = agent_history(2, **forms)
    assert image_cost(history) == 2 * URL_BOUND
    out = apply_image_budget(history, max_image_tokens=2_000, keep_detail=1)
    assert received(out) == [("auto", URL_BOUND), ("low", LOW)]
    assert out[3].content[1] == {"type": "image", "url": url, "extras": {"detail": "low"}}
    sizes = {url: (1024, 512), url + "?2": (512, 512)}
    known = apply_image_budget(history, max_image_tokens=2_000, keep_detail=2, image_sizes=sizes)
    assert known == history  # 255 + 425: both fit at their detail
    edit = ImageBudgetEdit(image_sizes=sizes)
    assert image_cost(history, edit.policy()) == 255 + 425


# -- what is never touched -------------------------------------------------------------------------


def test_the_latest_user_turn_is_never_touched() -> None:
    history = agent_history(2)
    big = [{"type": "text", "text": "And these?"}] + [v1_block(200 + i) for i in range(3)]
    history.append(HumanMessage(content=big))
    out = apply_image_budget(history, max_image_tokens=0)
    assert out[-1] is history[-1]
    assert received(out) == []  # earlier images: all stubbed
    assert len(stubs(out)) == 2
    # A turn of several user messages in a row: none of them is touched.
    history.append(HumanMessage(content=[v1_block(210)]))
    out = apply_image_budget(history, max_image_tokens=0)
    assert out[-2:] == history[-2:]
    assert len(stubs(out)) == 2
    # An earlier turn's images are fair game.
    history.append(AIMessage("Noted."))
    history.append(HumanMessage("Thanks"))
    assert len(stubs(apply_image_budget(history, max_image_tokens=0))) == 6


def test_tool_calls_and_tool_messages_stay_paired() -> None:
    history = agent_history(5)
    out = apply_image_budget(history, max_image_tokens=1_000)
    assert [type(m) for m in out] == [type(m) for m in history]
    for before, after in zip(history, out, strict=True):
        if isinstance(before, ToolMessage):
            assert isinstance(after, ToolMessage)
            assert after.tool_call_id == before.tool_call_id
            assert after.name == before.name
        if isinstance(before, AIMessage):
            assert after is before
    wire = to_wire_messages(out, ImageOptions())  # still a valid request
    calls = [c["id"] for m in wire if m["role"] == "assistant" for c in m.get("tool_calls", [])]
    answered = [m["tool_call_id"] for m in wire if m["role"] == "tool"]
    assert calls == answered == [f"call_{n}" for n in range(1, 6)]


def test_the_input_is_never_modified() -> None:
    history = agent_history(5)
    before = copy.deepcopy(history)
    apply_image_budget(history, max_image_tokens=1_000)
    assert history == before
    edit_input = list(history)
    ImageBudgetEdit(max_image_tokens=1_000).apply(edit_input, count_tokens=len)
    assert history == before  # apply replaced items of its list, not the messages in it
    assert edit_input != history


def test_idempotent() -> None:
    history = agent_history(9)
    for edit in (
        ImageBudgetEdit(max_image_tokens=3_000),
        ImageBudgetEdit(max_image_tokens=3_000, keep_detail=2, max_images=6),
        ImageBudgetEdit(max_image_tokens=500),
        ImageBudgetEdit(max_image_tokens=0),
    ):
        once = edit(history)
        assert edit(once) == once


def test_edit_apply_matches_the_function() -> None:
    history = agent_history(6)
    edited = list(history)
    ImageBudgetEdit(max_image_tokens=1_500).apply(edited, count_tokens=len)
    assert edited == apply_image_budget(history, max_image_tokens=1_500)


# -- stubs point to descriptions -------------------------------------------------------------------


def describe(call_id: str, image: str, answer: str = "A login form.") -> list[AnyMessage]:
    call = {"name": "describe_image", "args": {"image": image}, "id": call_id}
    return [
        AIMessage(content="", tool_calls=[call]),
        ToolMessage(content=answer, tool_call_id=call_id, name="describe_image"),
    ]


def test_a_stub_points_to_a_description_of_its_image() -> None:
    history = agent_history(3)
    history += describe("call_d1", "shots/shot_1.png")  # the name take_screenshot was given
    history += describe("call_d2", "shot_2.png", answer="")  # an empty answer is no description
    out = apply_image_budget(history, max_image_tokens=0)
    first, second, third = stubs(out)
    assert first.endswith(" It was described in the describe_image result of tool call call_d1.")
    assert "described" not in second
    assert "described" not in third


def test_a_stub_points_to_a_description_by_url_or_by_the_text_beside_the_image() -> None:
    url = "https://images.example/chart.png"
    history: list[AnyMessage] = [
        HumanMessage(content=[{"type": "text", "text": "Here is receipt.jpg:"}, v1_block(3)]),
        AIMessage("Looking."),
        HumanMessage(content=[{"type": "image_url", "image_url": {"url": url}}]),
        *describe("call_r", "receipt.jpg"),
        *describe("call_u", url),
        HumanMessage("Which is cheaper?"),
    ]
    out = apply_image_budget(history, max_image_tokens=0)
    assert stubs(out) == [
        "[An image was here (inline image, 1024x1024); left out to keep the context small.]"
        " It was described in the describe_image result of tool call call_r.",
        f"[An image was here ({url}); left out to keep the context small.]"
        " It was described in the describe_image result of tool call call_u.",
    ]


def test_failed_descriptions_are_not_pointed_to() -> None:
    history = agent_history(1)
    call, result = describe("call_d", "shot_1.png")
    assert isinstance(result, ToolMessage)
    history += [call, result.model_copy(update={"status": "error"})]
    assert "described" not in stubs(apply_image_budget(history, max_image_tokens=0))[0]


def test_custom_placeholder_and_pointer() -> None:
    history = agent_history(1) + describe("call_d", "shot_1.png")
    out = apply_image_budget(
        history,
        max_image_tokens=0,
        placeholder="[image: {image}]",
        pointer=" (see {tool_call_id})",
    )
    assert out[3].content[1] == {
        "type": "text",
        "text": "\n[image: inline image, 1024x1024] (see call_d)",
    }


# -- prepare_image's cache -------------------------------------------------------------------------


def counted_prepares(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The detail of each image ``prepare_image`` decodes (a cache miss) from now on."""
    calls: list[str] = []
    original = _preparation._prepare

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[2])  # the detail
        return original(*args, **kwargs)

    monkeypatch.setattr(_preparation, "_prepare", counted)
    return calls


def test_resending_a_downgraded_image_costs_no_new_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = counted_prepares(monkeypatch)
    history = agent_history(4)
    first = apply_image_budget(history, max_image_tokens=1_500, keep_detail=1)
    assert calls == ["low"] * 3
    second = apply_image_budget(history, max_image_tokens=1_500, keep_detail=1)
    assert calls == ["low"] * 3  # found in the cache: no decode, no resize, no encode
    assert second == first


def test_a_long_loop_under_the_default_budget_finds_its_low_images_in_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = counted_prepares(monkeypatch)
    history = agent_history(60)
    assert len(received(apply_image_budget(history))) == 5 + 49  # 5 x 765, then 49 x 85
    calls.clear()
    history += screenshot_turn(61)  # the next call: one more image, one more downgraded
    assert len(received(apply_image_budget(history))) == 54
    assert calls == ["low"]


# -- settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [{"max_image_tokens": -1}, {"keep_detail": -2}, {"max_images": 1.5}, {"detail_tokens": -5}],
)
def test_bad_settings_are_refused(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be a whole number"):
        ImageBudgetEdit(**settings)


def test_bad_detail_is_refused() -> None:
    with pytest.raises(InvalidRequestError):
        ImageBudgetEdit(default_detail="medium")  # type: ignore[arg-type]


def test_messages_without_images_pass_through() -> None:
    history: list[BaseMessage] = [HumanMessage("hi"), AIMessage("hello"), HumanMessage("bye")]
    out = apply_image_budget(history, max_image_tokens=0)
    assert all(a is b for a, b in zip(out, history, strict=True))


# -- many images, odd blocks -----------------------------------------------------------------------


class _CountingWords:
    """Stands in for the policy's word pattern, counting how many texts it reads."""

    def __init__(self) -> None:
        self.pattern = _policy._WORD
        self.reads = 0

    def findall(self, text: str) -> list[str]:
        self.reads += 1
        return self.pattern.findall(text)


def test_a_message_with_many_images_is_read_once_not_once_per_image(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The text beside 300 stubbed images is read once (it was read once per image: 11 s for
    10,000 images in one message)."""
    blocks: list[str | dict[str, Any]] = []
    for n in range(300):
        blocks.append({"type": "text", "text": f"Shot {n} of the checkout page"})
        blocks.append({"type": "image_url", "image_url": {"url": f"https://e.example/{n}.png"}})
    history = [HumanMessage(content=blocks), *describe("call_d", "receipt.jpg"), HumanMessage("?")]
    words = _CountingWords()
    monkeypatch.setattr(_policy, "_WORD", words)
    out = apply_image_budget(history, max_image_tokens=0)
    assert len(stubs(out)) == 300
    assert words.reads <= 300 + 10  # each text once (and a few other messages'), not 300 x 300


def test_a_block_whose_type_is_not_a_string_is_left_alone() -> None:
    odd: list[str | dict[str, Any]] = [{"type": ["image_url"], "image_url": {"url": "x"}}]
    history: list[AnyMessage] = [
        HumanMessage(content=[*odd, v1_block(1)]),
        AIMessage("ok"),
        HumanMessage("?"),
    ]
    out = apply_image_budget(history, max_image_tokens=0)
    assert out[0].content[0] == odd[0]  # not this policy's to judge: refused when sent
    assert len(stubs(out)) == 1


def test_an_image_url_block_with_an_id_is_counted_and_keeps_its_id() -> None:
    url = "data:image/png;base64," + b64(png(40))
    block = {"type": "image_url", "image_url": {"url": url}, "id": "shot_1"}
    history = agent_history(2, turn1=block)
    assert image_cost(history) == 2 * FULL
    out = apply_image_budget(history, max_image_tokens=FULL + LOW, keep_detail=1)
    assert received(out) == [("auto", FULL), ("low", LOW)]
    low = out[3].content[1]
    assert isinstance(low, dict)
    assert low["id"] == "shot_1"
