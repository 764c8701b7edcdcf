"""The stand-in answers a question about what it reads: the lines that match, each with its source.

Over real HTTP on the local server. Sources are ``[n]`` text parts (as a documents pipeline sends
a page's text layer) and the text OCR reads in the n-th image.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from langchain_afarensis_vision.server import LocalAfarensisServer
from langchain_afarensis_vision.server.engine import INTRO, TEXT_ONLY_ANSWER
from tests._printed import SURVEY, dense_text, printed, share_of_words
from tests.integration_tests.conftest import (
    body,
    data_url,
    image_bytes,
    image_part,
    ok_json,
    user,
)

pytestmark = pytest.mark.enable_socket

OCR_SECONDS = 300  # a page's OCR takes seconds; many more on a machine that is busy
PAGE_1 = "[1] report.pdf, page 3 — text layer: Annual report 2023\nThe board met four times.\n"
PAGE_2 = (
    "[2] report.pdf, page 7 — text layer: Results\nRevenue rose 12% in 2023.\n"
    "Operating costs fell by 4.5 million euros.\nThe café in Zoë Street closed in 2022."
)


def ask(client: httpx2.Client, *parts: dict[str, Any] | str, **extra: Any) -> str:
    answer = ok_json(client.post("/chat/completions", json=body(user(*parts), **extra)))
    content: str = answer["choices"][0]["message"]["content"]
    return content


def reading(server: LocalAfarensisServer) -> httpx2.Client:
    """A client that waits for OCR."""
    headers = {"authorization": f"Bearer {server.api_key}"}
    return httpx2.Client(base_url=server.base_url, headers=headers, timeout=OCR_SECONDS)


def pages(*texts: str) -> list[dict[str, Any] | str]:
    """Each text part followed by a page image (a plain one: the text parts carry the words)."""
    parts: list[dict[str, Any] | str] = []
    for text in texts:
        parts += [text, image_part(data_url(image_bytes((60, 80), "white")))]
    return parts


def test_a_question_gets_the_given_lines_that_match_it_each_with_its_source(
    client: httpx2.Client,
) -> None:
    content = ask(client, "How much did revenue grow in 2023?", *pages(PAGE_1, PAGE_2))
    intro, *lines = content.splitlines()
    assert intro.startswith(INTRO)
    assert lines == ["- Revenue rose 12% in 2023. [2]"]


def test_case_accents_and_numbers(client: httpx2.Client) -> None:
    content = ask(client, "When did the CAFE on Zoe street close?", *pages(PAGE_1, PAGE_2))
    assert content.splitlines()[1:] == ["- The café in Zoë Street closed in 2022. [2]"]
    content = ask(client, "What happened in 2022?", *pages(PAGE_1, PAGE_2))
    assert content.splitlines()[1:] == ["- The café in Zoë Street closed in 2022. [2]"]


def test_chinese_is_matched_by_character_pairs(client: httpx2.Client) -> None:
    texts = (
        "[1] 年报.pdf, 第1页: 员工人数保持不变。",
        "[2] 年报.pdf, 第2页: 今年收入增长了百分之十二。",
    )
    content = ask(client, "收入增长了多少\uff1f", *pages(*texts))
    assert content.splitlines()[1:] == ["- 年报.pdf, 第2页: 今年收入增长了百分之十二。 [2]"]


def test_text_parts_alone_are_sources_too(client: httpx2.Client) -> None:
    content = ask(client, "Did operating costs fall?", PAGE_1, PAGE_2)
    assert content.splitlines()[1:] == ["- Operating costs fell by 4.5 million euros. [2]"]
    assert ask(client, "Did operating costs fall?") == TEXT_ONLY_ANSWER  # nothing to quote


@pytest.mark.parametrize(
    "prompt", ["Describe the images.", "What is in this image?", "What does the weather show?"]
)
def test_describe_prompts_and_questions_nothing_matches_get_the_facts(
    client: httpx2.Client, prompt: str
) -> None:
    content = ask(client, prompt, *pages(PAGE_1, PAGE_2))
    assert "Image 1: a PNG of 60 x 80 pixels" in content
    assert "Image 2: a PNG of 60 x 80 pixels" in content


def test_lines_read_in_the_kth_image_are_cited_as_k(
    start_server: Callable[..., LocalAfarensisServer],
) -> None:
    server = start_server(ocr=True)
    first = image_part(data_url(printed("The board met four times in 2023.", points=12)))
    second = image_part(data_url(printed(SURVEY, points=10, dpi=96)))
    with reading(server) as client:
        content = ask(client, "How many parcels did the northern warehouse ship?", first, second)
    intro, *lines = content.splitlines()
    assert intro.startswith(INTRO)
    assert lines
    assert all(line.endswith(" [2]") for line in lines)
    assert "18,240 parcels" in content


def test_a_dense_page_comes_back_whole_when_max_tokens_allows(
    start_server: Callable[..., LocalAfarensisServer],
) -> None:
    source = dense_text(2600)
    page = image_part(data_url(printed(source, points=10, dpi=90)))
    server = start_server(ocr=True)
    with reading(server) as client:
        described = ok_json(
            client.post("/chat/completions", json=body(user("Describe it.", page), max_tokens=4096))
        )
    choice = described["choices"][0]
    assert choice["finish_reason"] == "stop"
    read = choice["message"]["content"].split("Text read, line by line:\n", 1)[1]
    assert len(read) > 2000  # the engine used to cut the text here
    assert share_of_words(source, read) >= 0.98
