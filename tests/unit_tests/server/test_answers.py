"""The stand-in's extractive answers: which terms count, how lines are ranked, what asks."""

from __future__ import annotations

import pytest

from langchain_afarensis_vision.server._answers import Line, best_lines, is_question, terms


def test_terms_fold_case_and_diacritics_drop_common_words_and_keep_numbers_as_written() -> None:
    assert terms("What did Zoë's CAFÉ earn in 2023?") == ["zoe", "cafe", "earn", "2023"]
    assert terms("Revenues rose 12% to 4.5 million; 18,240 parcels") == [
        "revenue", "rose", "12", "4.5", "million", "18,240", "parcel",
    ]  # fmt: skip
    assert terms("class gas") == ["class", "gas"]  # "ss" and short words keep their s
    assert terms("\uff46\uff55\uff4c\uff4c width") == ["full", "width"]  # full-width letters


def test_cjk_runs_are_cut_into_character_pairs() -> None:
    assert terms("收入增长") == ["收入", "入增", "增长"]
    assert terms("今年 収益") == ["今年", "収益"]
    assert terms("税") == ["税"]


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("How much did revenue grow?", True),
        ("what's the dividend", True),
        ("List the totals", True),
        ("收入是多少\uff1f", True),  # a full-width question mark
        ("Describe the image.", False),
        ("Caption this photo", False),
    ],
)
def test_what_asks_a_question(text: str, asks: bool) -> None:
    assert is_question(text) is asks


def test_rare_terms_weigh_more_and_weak_lines_are_left_out() -> None:
    lines = [
        Line("The report covers the year", 1),
        Line("Revenue rose 12% in 2023, the report says", 2),
        Line("Revenue fell in 2022", 1),
        Line("The report has four parts", 3),
        Line("Revenue rose 12% in 2023, the report says", 2),  # the same line twice: once
    ]
    best = best_lines(set(terms("By how much did revenue rise in 2023 per the report?")), lines)
    assert best == [lines[1]]  # "revenue" alone scores under half of it; "report" is common
    assert best_lines(set(terms("How did revenue change?")), lines) == [lines[1], lines[2]]
    assert best_lines(set(terms("weather")), lines) == []
