"""The offline engine's answers: honest, deterministic, shaped by max_tokens, stop, tools, JSON."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx2
import jsonschema
import pytest
from PIL import Image

from langchain_afarensis_vision._api.contract import text_tokens
from langchain_afarensis_vision.server import create_app
from langchain_afarensis_vision.server._analysis import colour_name
from langchain_afarensis_vision.server._bodies import pieces
from langchain_afarensis_vision.server._placeholders import placeholder
from langchain_afarensis_vision.server._tool_use import named_images
from langchain_afarensis_vision.server.engine import INTRO, TEXT_ONLY_ANSWER, why_no_ocr
from tests._support import TEST_IMAGES
from tests.integration_tests.conftest import (
    MODEL,
    body,
    data_url,
    image_bytes,
    image_part,
    ok_json,
    sse_events,
    user,
)

pytestmark = pytest.mark.enable_socket

HELLO = body({"role": "user", "content": "Hello"})
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "note": {"type": "string"},
            },
            "required": ["city", "unit", "days"],
        },
    },
}
WEATHER_PLACEHOLDERS = {
    "city": "",
    "unit": "celsius",
    "days": 1,
    "note": "Local Afarensis stand-in, not GPT-4V: measured nothing; placeholders, not measured: "
    "city, unit, days.",
}
"""A forced get_weather: required fields at their minimal values, the line in ``note``."""
MAGIC = {
    "type": "function",
    "function": {"name": "magic_function", "parameters": {"type": "object", "properties": {}}},
}


def _post(client: httpx2.Client, payload: dict[str, Any]) -> dict[str, Any]:
    return ok_json(client.post("/chat/completions", json=payload))


def _content(answer: dict[str, Any]) -> str:
    content: str = answer["choices"][0]["message"]["content"]
    return content


# -- text --------------------------------------------------------------------------------------


def test_text_only_answer(client: httpx2.Client) -> None:
    answer = _post(client, HELLO)
    assert _content(answer) == TEXT_ONLY_ANSWER
    assert answer["system_fingerprint"] == "fp_local_afarensis"
    assert answer["id"].startswith("chatcmpl-local-")
    assert answer["choices"][0]["finish_reason"] == "stop"


def test_without_max_tokens_the_answer_is_short(client: httpx2.Client) -> None:
    """Like the preview model: its default completion budget is tiny (16 tokens here)."""
    payload = {k: v for k, v in HELLO.items() if k != "max_tokens"}
    answer = _post(client, payload)
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] == 16
    assert TEXT_ONLY_ANSWER.startswith(_content(answer))


def test_same_request_same_answer(client: httpx2.Client) -> None:
    payload = body(user("Describe", image_part(data_url(image_bytes()), "low")))
    first, second = _post(client, payload), _post(client, payload)
    assert first == second
    other = _post(client, {**payload, "temperature": 0.5})
    assert other["id"] != first["id"]
    assert other["choices"] == first["choices"]


def test_image_description_is_honest(client: httpx2.Client) -> None:
    red = data_url(image_bytes((300, 100), (230, 20, 20)))
    clear = data_url(image_bytes((50, 50), (0, 0, 255, 0), mode="RGBA"))
    half = Image.new("RGBA", (40, 40), (255, 255, 255, 255))
    half.paste((0, 0, 0, 0), (0, 0, 40, 20))
    buffer = io.BytesIO()
    half.save(buffer, "PNG")
    parts = [
        image_part(red, "high"),
        image_part(clear, "low"),
        image_part(data_url(buffer.getvalue())),
    ]
    answer = _post(client, body(user("What is this?", *parts)))
    text = _content(answer)
    assert text.startswith(INTRO)
    assert "I cannot recognise objects" in text
    assert "the 3 images you sent" in text
    assert "Image 1: a PNG of 300 x 100 pixels (upright); at detail 'high'" in text
    assert "almost entirely red (100%)" in text
    assert "It is dark overall" in text  # pure red has a luma of about 80
    assert "Image 2: a PNG of 50 x 50" in text
    assert "only transparent pixels" in text
    assert "transparent pixels (50% of them)" in text
    assert "white (100%)" in text
    assert "It is bright overall" in text
    assert f"Text: {why_no_ocr()}" in text


@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((255, 0, 0), "red"),
        ((255, 140, 0), "orange"),
        ((250, 240, 20), "yellow"),
        ((20, 160, 40), "green"),
        ((0, 128, 128), "teal"),
        ((30, 60, 220), "blue"),
        ((128, 0, 128), "purple"),
        ((255, 105, 180), "pink"),
        ((139, 69, 19), "brown"),
        ((10, 10, 10), "black"),
        ((250, 250, 250), "white"),
        ((128, 128, 128), "grey"),
    ],
)
def test_colour_names(rgb: tuple[int, int, int], name: str) -> None:
    assert colour_name(*rgb) == name


def test_stop_sequences(client: httpx2.Client) -> None:
    answer = _post(client, {**HELLO, "stop": ["engine", "Hello"]})
    assert _content(answer) == ""
    answer = _post(client, {**HELLO, "stop": "Afarensis"})
    assert _content(answer) == "Hello! I am the local "
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"]["completion_tokens"] == 7  # cl100k_base: "Hello", "!", " I", ...


def test_max_tokens_truncates(client: httpx2.Client) -> None:
    answer = _post(client, {**HELLO, "max_tokens": 5})
    assert _content(answer) == "Hello! I am the"  # five whole cl100k_base tokens
    assert text_tokens(_content(answer)) == 5
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] == 5


def test_n_choices(client: httpx2.Client) -> None:
    answer = _post(client, {**HELLO, "n": 2})
    assert [c["index"] for c in answer["choices"]] == [0, 1]
    assert answer["usage"]["completion_tokens"] == 2 * text_tokens(TEXT_ONLY_ANSWER)
    assert answer["choices"][0]["message"] == answer["choices"][1]["message"]


def test_pieces_keep_every_character() -> None:
    text = "  Two  spaces,\nnew line and a verylongwordthatdoesnotfitinonepiece. "
    assert "".join(pieces(text)) == text


def test_tool_result_is_passed_on(client: httpx2.Client) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    answer = _post(
        client,
        body(
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "Sunny, 21 C"},
            tools=[WEATHER],
        ),
    )
    assert _content(answer).endswith("The tool `get_weather` returned: Sunny, 21 C")


# -- tools and JSON ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "name"),
    [
        ("required", "get_weather"),
        ({"type": "function", "function": {"name": "magic_function"}}, "magic_function"),
        (
            {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "required",
                    "tools": [{"type": "function", "function": {"name": "magic_function"}}],
                },
            },
            "magic_function",
        ),
    ],
)
def test_forced_tool_gets_placeholder_arguments(
    client: httpx2.Client, choice: Any, name: str
) -> None:
    answer = _post(client, {**HELLO, "tools": [WEATHER, MAGIC], "tool_choice": choice})
    choice_0 = answer["choices"][0]
    assert choice_0["finish_reason"] == "tool_calls"
    assert choice_0["message"]["content"] is None
    (call,) = choice_0["message"]["tool_calls"]
    assert call["type"] == "function"
    assert call["id"].startswith("call_local_")
    assert call["function"]["name"] == name
    arguments = json.loads(call["function"]["arguments"])
    schema = WEATHER if name == "get_weather" else MAGIC
    jsonschema.validate(arguments, schema["function"]["parameters"])  # type: ignore[index]
    if name == "get_weather":
        assert arguments == WEATHER_PLACEHOLDERS
        assert answer["metadata"] == {
            "stand_in": "local-afarensis",
            "measured": "",
            "placeholders": "city,unit,days",
        }


@pytest.mark.parametrize("choice", [None, "auto", "none"])
def test_unforced_tools_get_text(client: httpx2.Client, choice: str | None) -> None:
    extra: dict[str, Any] = {"tools": [WEATHER]}
    if choice:
        extra["tool_choice"] = choice
    answer = _post(client, {**HELLO, **extra})
    assert _content(answer) == TEXT_ONLY_ANSWER
    assert "tool_calls" not in answer["choices"][0]["message"]


def test_json_object_answer(client: httpx2.Client) -> None:
    payload = body(
        user("Describe as JSON", image_part(data_url(image_bytes((20, 10))), "low")),
        response_format={"type": "json_object"},
        max_tokens=1000,
    )
    facts = json.loads(_content(_post(client, payload)))
    assert facts["engine"] == "local-afarensis"
    assert facts["image_count"] == 1
    image = facts["images"][0]
    assert (image["format"], image["width"], image["height"], image["tokens"]) == (
        "png",
        20,
        10,
        85,
    )
    assert image["colours"] == [{"name": "red", "share": 1.0}]
    assert image["text"] is None


def test_json_schema_answer(client: httpx2.Client) -> None:
    schema = {
        "type": "object",
        "properties": {
            "caption": {"type": "string", "minLength": 3},
            "objects": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "confidence": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "kind": {"$ref": "#/$defs/Kind"},
        },
        "required": ["caption", "objects", "confidence", "kind"],
        "$defs": {"Kind": {"type": "string", "enum": ["photo", "drawing"]}},
    }
    payload = {
        **HELLO,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    }
    value = json.loads(_content(_post(client, payload)))
    jsonschema.validate(value, schema)
    assert value == placeholder(schema)


# -- tools the engine calls on its own ---------------------------------------------------------

DESCRIBE = {
    "type": "function",
    "function": {
        "name": "describe_image",
        "description": "Look at an image.",
        "parameters": {
            "type": "object",
            "properties": {
                "image": {"type": "string", "description": "A file name, path or URL."},
                "question": {"type": "string", "default": "Describe it."},
            },
            "required": ["image"],
        },
    },
}


def _calls(answer: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    calls = answer["choices"][0]["message"].get("tool_calls") or []
    return [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("What is in hopper.jpg?", ["hopper.jpg"]),
        ("Compare ./shots/a.PNG and C:\\pics\\b.webp.", ["./shots/a.PNG", "C:\\pics\\b.webp"]),
        ('Look at "my photo.jpeg", please', ["my photo.jpeg"]),
        (
            "See https://example.com/cat?size=2, then cat.gif",
            ["https://example.com/cat?size=2", "cat.gif"],
        ),
        ("notes.txt, archive.png.zip and v1.2 are not images", []),
    ],
)
def test_named_images(text: str, named: list[str]) -> None:
    assert named_images(text) == named


def test_a_named_image_gets_a_tool_call(client: httpx2.Client) -> None:
    question = "What is in hopper.jpg?"
    payload = body({"role": "user", "content": question}, tools=[WEATHER, DESCRIBE])
    answer = _post(client, payload)
    assert answer["choices"][0]["finish_reason"] == "tool_calls"
    assert answer["choices"][0]["message"]["content"] is None
    assert _calls(answer) == [("describe_image", {"image": "hopper.jpg", "question": question})]
    (call,) = answer["choices"][0]["message"]["tool_calls"]
    assert call["id"].startswith("call_local_")
    assert answer["usage"]["completion_tokens"] == text_tokens(
        "describe_image" + call["function"]["arguments"]
    )
    assert answer["metadata"] == {
        "stand_in": "local-afarensis",
        "measured": "",
        "placeholders": "",
    }


def test_each_named_image_is_called_once_then_the_results_are_quoted(
    client: httpx2.Client,
) -> None:
    ask = {"role": "user", "content": "Compare a.png and b.png"}
    first = _post(client, body(ask, tools=[DESCRIBE]))
    assert [args["image"] for _, args in _calls(first)] == ["a.png", "b.png"]
    made = first["choices"][0]["message"]["tool_calls"]
    results = [
        {"role": "tool", "tool_call_id": made[0]["id"], "content": "A red square."},
        {"role": "tool", "tool_call_id": made[1]["id"], "content": "A blue circle."},
    ]
    turn = {"role": "assistant", "content": None, "tool_calls": made}
    final = _post(client, body(ask, turn, *results, tools=[DESCRIBE]))
    assert _calls(final) == []
    assert _content(final) == (
        f"{INTRO} I cannot interpret tool results; here they are as returned.\n"
        "The tool `describe_image` returned: A red square.\n"
        "The tool `describe_image` returned: A blue circle."
    )


def test_without_parallel_calls_the_images_are_called_one_by_one(client: httpx2.Client) -> None:
    ask = {"role": "user", "content": "Compare a.png and b.png"}
    first = _post(client, body(ask, tools=[DESCRIBE], parallel_tool_calls=False))
    assert [args["image"] for _, args in _calls(first)] == ["a.png"]
    made = first["choices"][0]["message"]["tool_calls"]
    turn = {"role": "assistant", "content": None, "tool_calls": made}
    result = {"role": "tool", "tool_call_id": made[0]["id"], "content": "A red square."}
    second = _post(client, body(ask, turn, result, tools=[DESCRIBE], parallel_tool_calls=False))
    assert [args["image"] for _, args in _calls(second)] == ["b.png"]


@pytest.mark.parametrize(
    "extra",
    [
        {"tool_choice": "none"},
        {"tools": [WEATHER]},  # no parameter that takes an image
        {
            "tool_choice": {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "auto",
                    "tools": [{"type": "function", "function": {"name": "get_weather"}}],
                },
            }
        },
    ],
)
def test_no_call_when_tools_are_forbidden_or_take_no_image(
    client: httpx2.Client, extra: dict[str, Any]
) -> None:
    payload = body({"role": "user", "content": "What is in hopper.jpg?"}, tools=[WEATHER, DESCRIBE])
    answer = _post(client, {**payload, **extra})
    assert _calls(answer) == []
    assert _content(answer) == TEXT_ONLY_ANSWER


def test_a_forced_tool_takes_the_named_image(client: httpx2.Client) -> None:
    payload = body(
        {"role": "user", "content": "Describe https://example.com/a.png"},
        tools=[DESCRIBE],
        tool_choice="required",
    )
    assert _calls(_post(client, payload)) == [
        (
            "describe_image",
            {
                "image": "https://example.com/a.png",
                "question": "Describe https://example.com/a.png",
            },
        )
    ]


# -- streaming ---------------------------------------------------------------------------------


def test_stream_with_usage(client: httpx2.Client) -> None:
    payload = body(
        user("Describe", image_part(data_url(image_bytes()), "low")),
        stream=True,
        stream_options={"include_usage": True},
    )
    events, done = sse_events(client.post("/chat/completions", json=payload))
    plain = _post(
        client, {k: v for k, v in payload.items() if k not in {"stream", "stream_options"}}
    )
    assert done
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    assert text == _content(plain)
    assert len(events) > 4
    finishes = [e["choices"][0]["finish_reason"] for e in events if e["choices"]]
    assert finishes[-1] == "stop"
    assert all(f is None for f in finishes[:-1])
    assert events[-1]["choices"] == []
    assert events[-1]["usage"] == plain["usage"]
    assert all(e["usage"] is None for e in events[:-1])
    assert len({e["id"] for e in events}) == 1


def test_stream_without_usage(client: httpx2.Client) -> None:
    events, done = sse_events(client.post("/chat/completions", json={**HELLO, "stream": True}))
    assert done
    assert all("usage" not in e for e in events)
    assert events[-1]["choices"][0]["finish_reason"] == "stop"


def test_stream_tool_call(client: httpx2.Client) -> None:
    payload = {**HELLO, "stream": True, "tools": [WEATHER], "tool_choice": "required"}
    events, done = sse_events(client.post("/chat/completions", json=payload))
    assert done
    deltas = [e["choices"][0]["delta"] for e in events]
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert calls[0]["id"].startswith("call_local_")
    assert calls[0]["function"]["name"] == "get_weather"
    arguments = "".join(c["function"]["arguments"] for c in calls)
    assert json.loads(arguments) == WEATHER_PLACEHOLDERS
    assert events[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert events[-1]["metadata"]["placeholders"] == "city,unit,days"


# -- in process --------------------------------------------------------------------------------


async def test_in_process_app() -> None:
    app = create_app(api_key="sk-local-inproc", ocr=False)
    transport = httpx2.ASGITransport(app=app)
    headers = {"authorization": "Bearer sk-local-inproc"}
    async with httpx2.AsyncClient(
        transport=transport, base_url="http://local/v1", headers=headers
    ) as client:
        photo = data_url((TEST_IMAGES / "flower.jpg").read_bytes(), "image/jpeg")
        response = await client.post(
            "/chat/completions", json=body(user("What?", image_part(photo, "high")))
        )
        answer = ok_json(response)
        assert "a JPEG of 480 x 360 pixels" in _content(answer)
        assert "mostly green" in _content(answer)
        models = await client.get("/models")
        assert models.json()["data"][0]["id"] == MODEL
