"""Per-image rules (formats, 20 MB, animation, broken data, bombs), URL images and image tokens."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx2
import pytest
from langchain_core.messages import HumanMessage
from PIL import Image

from langchain_afarensis_vision._api.contract import (
    MAX_IMAGE_BYTES,
    REPLY_PRIMER_TOKENS,
    TOKENS_PER_MESSAGE,
    Detail,
    estimate_image_tokens,
    text_tokens,
)
from langchain_afarensis_vision.server.engine import NOT_EXAMINED
from tests import hostile_images as hostile
from tests._support import TEST_IMAGES
from tests.integration_tests.conftest import (
    ImageHost,
    assert_error,
    body,
    data_url,
    image_bytes,
    image_part,
    ok_json,
    user,
)

pytestmark = pytest.mark.enable_socket

PARAM = "messages[0].content[1].image_url"


def _animated_gif() -> bytes:
    buffer = io.BytesIO()
    frames = [Image.new("RGB", (8, 8), color) for color in ("red", "green", "blue")]
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def _ask(client: httpx2.Client, url: str, detail: str | None = None) -> httpx2.Response:
    return client.post(
        "/chat/completions", json=body(user("What is this?", image_part(url, detail)))
    )


def _sample(name: str, mime: str = "image/png") -> str:
    return data_url((TEST_IMAGES / name).read_bytes(), mime)


_REFUSED = [
    ("tiff", _sample("hopper.tif"), "invalid_image_format"),
    ("bmp", _sample("hopper.bmp"), "invalid_image_format"),
    ("text", data_url(b"just some text, not an image"), "invalid_image_format"),
    ("pdf", data_url(b"%PDF-1.4 a document"), "invalid_image_format"),
    ("truncated-png", data_url(image_bytes()[:60]), "invalid_image"),
    ("bad-base64", "data:image/png;base64,not*base64!", "invalid_image"),
    ("animated-gif", data_url(_animated_gif(), "image/gif"), "animated_gif_not_supported"),
    ("iss634", _sample("iss634.gif", "image/gif"), "animated_gif_not_supported"),
    ("over-20MB", data_url(b"\x89PNG" + bytes(MAX_IMAGE_BYTES)), "image_too_large"),
]


@pytest.mark.parametrize(
    ("url", "code"), [(url, code) for _, url, code in _REFUSED], ids=[n for n, _, _ in _REFUSED]
)
def test_refused_images_carry_the_api_code(client: httpx2.Client, url: str, code: str) -> None:
    data = assert_error(_ask(client, url), 400, code, PARAM)
    assert data["error"]["type"] == "invalid_request_error"


def test_the_second_bad_image_is_named(client: httpx2.Client) -> None:
    good, bad = data_url(image_bytes()), data_url(b"GIF89a broken")
    response = client.post(
        "/chat/completions",
        json=body(user("two", image_part(good)), user(image_part(bad))),
    )
    assert_error(response, 400, "invalid_image", "messages[1].content[0].image_url")


@pytest.mark.parametrize("name", ["hopper.png", "hopper.jpg", "hopper.webp", "hopper.gif"])
def test_accepted_formats(client: httpx2.Client, name: str) -> None:
    data = (TEST_IMAGES / name).read_bytes()
    answer = ok_json(_ask(client, data_url(data), "high"))
    text = answer["choices"][0]["message"]["content"]
    assert f"a {name.rsplit('.', 1)[1].upper().replace('JPG', 'JPEG')} of 128 x 128" in text


def test_every_image_the_api_takes_is_answered(client: httpx2.Client) -> None:
    # The conformance suite's large PNG: 4096 x 8192 (33.5 MP) in 117 kB, decoded and measured.
    tall = ok_json(_ask(client, data_url(hostile.tall_png(4096, 8192, colour=2))))
    text = tall["choices"][0]["message"]["content"]
    assert "a PNG of 4096 x 8192 pixels" in text
    assert "Colours: almost entirely black (100%)" in text
    assert tall["usage"]["prompt_tokens_details"]["image_tokens"] == 1105
    # 400 M pixels: more than the server's image memory; answered from its header alone.
    bomb = ok_json(_ask(client, data_url(hostile.tall_png(20_000, 20_000))))
    text = bomb["choices"][0]["message"]["content"]
    assert "a PNG of 20000 x 20000 pixels" in text
    assert NOT_EXAMINED in text
    assert bomb["usage"]["prompt_tokens_details"]["image_tokens"] == 765


# -- URL images --------------------------------------------------------------------------------


def test_url_image_is_fetched(client: httpx2.Client, image_host: ImageHost) -> None:
    image_host.routes["/blue.png"] = (200, image_bytes((300, 200), (0, 0, 255)), "image/png")
    answer = ok_json(_ask(client, image_host.url("/blue.png"), "high"))
    text = answer["choices"][0]["message"]["content"]
    assert "a PNG of 300 x 200 pixels" in text
    assert "blue (100%)" in text
    assert answer["usage"]["prompt_tokens_details"]["image_tokens"] == 255


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/missing.png", "image_url_unreachable"),
        ("/server-error.png", "image_url_unreachable"),
        ("/page.html", "invalid_image_format"),
        ("/big.png", "image_too_large"),
    ],
)
def test_bad_url_images(client: httpx2.Client, image_host: ImageHost, path: str, code: str) -> None:
    image_host.routes["/server-error.png"] = (500, b"oops", "text/plain")
    image_host.routes["/page.html"] = (200, b"<html><body>hi</body></html>", "text/html")
    assert_error(_ask(client, image_host.url(path)), 400, code, PARAM)


def test_unreachable_host(client: httpx2.Client) -> None:
    import socket

    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = assert_error(
        _ask(client, f"http://127.0.0.1:{port}/x.png"), 400, "image_url_unreachable", PARAM
    )
    assert f"127.0.0.1:{port}" in data["error"]["message"]


# -- tokens ------------------------------------------------------------------------------------

_CASES: list[tuple[tuple[int, int], Detail | None]] = [
    ((1024, 1024), "high"),
    ((2048, 4096), "high"),
    ((4096, 8192), "low"),
    ((500, 500), "high"),
    ((3000, 1000), "high"),
    ((4032, 3024), None),  # auto
    ((64, 64), "low"),
]


def test_prompt_tokens_follow_the_formula(client: httpx2.Client) -> None:
    """Several images at several details in one request: text tokens + each image's tokens."""
    question = "Compare these images, please."
    parts: list[Any] = [question]
    expected_images = 0
    for size, detail in _CASES:
        jpeg = image_bytes(size, (10, 200, 30), "JPEG")  # JPEG: big ones encode and decode fast
        parts.append(image_part(data_url(jpeg, "image/jpeg"), detail))
        expected_images += estimate_image_tokens(*size, detail or "auto")
    assert expected_images == 765 + 1105 + 85 + 255 + 1445 + 765 + 85
    answer = ok_json(client.post("/chat/completions", json=body(user(*parts))))
    usage = answer["usage"]
    expected_text = REPLY_PRIMER_TOKENS + TOKENS_PER_MESSAGE + text_tokens("user")
    expected_text += text_tokens(question)
    assert usage["prompt_tokens"] == expected_text + expected_images
    assert usage["prompt_tokens_details"] == {
        "text_tokens": expected_text,
        "image_tokens": expected_images,
    }
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert "the 7 images you sent" in answer["choices"][0]["message"]["content"]


def test_server_and_client_count_the_same(make_chat: Any) -> None:
    model = make_chat()
    messages = [
        HumanMessage(
            content=[
                {"type": "text", "text": "What is in these two photos?"},
                {
                    "type": "image",
                    "base64": base64.b64encode((TEST_IMAGES / "flower.jpg").read_bytes()).decode(),
                    "mime_type": "image/jpeg",
                },
                {
                    "type": "image_url",
                    "image_url": {"url": data_url(image_bytes((900, 700))), "detail": "low"},
                },
            ],
            name="tester",
        )
    ]
    counted = model.get_num_tokens_from_messages(messages)
    answer = model.invoke(messages)
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["input_tokens"] == counted


def test_orientation_is_applied_to_sizes(client: httpx2.Client) -> None:
    data = (TEST_IMAGES / "hopper_orientation_6.jpg").read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        stored = image.size
    answer = ok_json(_ask(client, data_url(data, "image/jpeg"), "high"))
    text = answer["choices"][0]["message"]["content"]
    assert f"{stored[1]} x {stored[0]} pixels (EXIF orientation 6)" in text
