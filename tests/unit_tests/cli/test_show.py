"""The CLI's text view: repeated sentences said once, answers indented, honest summaries."""

from __future__ import annotations

from langchain_afarensis_vision.cli._records import Record
from langchain_afarensis_vision.cli._show import (
    NAME_WIDTH,
    Repeats,
    describe_summary,
    display_width,
    fact_line,
    fit,
    indented,
    tokens_summary,
)

INTRO = "I am the local engine. I cannot recognise objects."
HINT = 'Text: OCR is not available (pip install ".[ocr]").'


def _answer(measure: str) -> str:
    return f"{INTRO}\nImage 1: {measure}. It is dark (85 of 255). {HINT}"


def test_sentences_shared_with_the_first_answer_are_said_once() -> None:
    repeats = Repeats()
    first = _answer("a PNG of 8 x 8")
    assert repeats.shown(first) == first
    assert not repeats.trimmed
    shown = repeats.shown(_answer("a JPEG of 9 x 9"))
    assert shown == "… Image 1: a JPEG of 9 x 9. It is dark (85 of 255). …"  # a measurement stays
    assert repeats.trimmed


def test_only_the_edges_are_trimmed_and_something_is_always_left() -> None:
    repeats = Repeats()
    repeats.shown(_answer("a PNG of 8 x 8"))
    other = "Something else entirely. It is dark (85 of 255)."
    assert repeats.shown(other) == other  # shared, but not at the first answer's edges
    assert not repeats.trimmed
    assert repeats.shown(f"{INTRO} {HINT}") == f"… {HINT}"  # never an empty answer
    numbered = "I am the local engine. Image 1 is 8 px. It is small."
    assert repeats.shown(numbered) == "… Image 1 is 8 px. It is small."
    assert repeats.shown(_answer("a PNG of 8 x 8")) == "… (the same answer as the first) …"


def test_every_line_is_indented_and_long_lines_wrap() -> None:
    text = indented("one\n" + "word " * 40 + "\n\nthree", width=40)
    lines = text.splitlines()
    assert all(line.startswith("    ") for line in lines)
    assert all(len(line) <= 40 for line in lines)
    assert lines[0] == "    one"
    assert lines[-1] == "    three"


def _record(**fields: object) -> Record:
    base: Record = {
        "image": "a.png",
        "format": "PNG",
        "source_bytes": 100,
        "bytes": 80,
        "image_tokens": 85,
        "usage": {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120},
        "error": None,
    }
    return {**base, **fields}


def test_summaries_count_only_what_was_done() -> None:
    refused = {"type": "invalid_request_error", "code": "image_too_large", "status": None}
    failed = {"type": "authentication_error", "code": "invalid_api_key", "status": 401}
    records = [_record(), _record(error=refused), _record(error=failed, usage=None)]
    assert describe_summary(records) == (
        "1 of 3 images described (1 refused before sending, 1 failed); 85 image tokens; "
        "usage: 100 input and 20 output tokens."
    )
    line = tokens_summary(records[:2])
    assert line.startswith("1 of 2 images accepted (1 refused): 100 bytes become 80; 85 image")
    assert "sent" not in line


def _facts(image: str) -> Record:
    return _record(
        image=image, source_width=128, source_height=128, mime_type="image/jpeg", width=128,
        height=128, format="JPEG", changed=False,
    )  # fmt: skip


def test_fact_lines_align_by_display_width_and_long_names_are_cut_in_the_middle() -> None:
    names = [
        "a.jpg",
        "a-very-long-file-name-from-a-camera-2024-06-01.jpg",
        "富士山の写真.jpg",  # wide (CJK) characters take two columns each
        "長い名前の写真ファイル二〇二四年六月一日撮影.jpg",
        "e\u0301te\u0301.jpg",  # combining accents take none
    ]
    lines = [fact_line(_facts(f"/photos/{name}")) for name in names]
    columns = {display_width(line.split(" JPEG 128x128 ")[0]) for line in lines}
    assert columns == {NAME_WIDTH}  # every line's next column starts at the same place
    assert lines[1].startswith("a-very-long-f…24-06-01.jpg JPEG")  # the start and the suffix
    assert lines[3].startswith("長い名前の写…一日撮影.jpg  JPEG")  # a wide char is never halved
    assert lines[2].startswith("富士山の写真.jpg" + " " * 10 + " JPEG")
    assert display_width("富士山") == 6
    assert fit("abc", 5) == "abc  "
