"""``documents._terms``: text folded alike for pages and questions; safe FTS5 queries."""

from __future__ import annotations

import sqlite3

import pytest

from langchain_afarensis_vision.documents._terms import fold, match_query, novel_lines, words


def test_accents_case_and_width_fold_away() -> None:
    assert words("Café CRÈME naïve \uff21\uff22\uff23") == ["cafe", "creme", "naive", "abc"]


def test_cjk_runs_become_overlapping_pairs() -> None:
    assert words("数据分析报告") == ["数据", "据分", "分析", "析报", "报告"]
    assert words("東京タワー") == ["東京", "京タ", "タワ", "ワー"]
    assert words("猫 and 狗") == ["猫", "and", "狗"]


def test_a_query_is_words_or_ed_and_quoted() -> None:
    assert match_query("How much energy did the Lindqvist turbines make?") == (
        '"energy" OR "lindqvist" OR "turbines" OR "make"'
    )
    assert match_query("the of") == '"the" OR "of"'  # only glue: kept rather than nothing
    assert match_query("?!") is None


@pytest.mark.parametrize(
    "question",
    ['"; DROP TABLE pages; --', "NEAR(a b)", "a AND NOT b*", "col:value", "^start", '"""'],
)
def test_fts5_syntax_in_a_question_is_text(question: str) -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize='porter unicode61')")
    db.execute("INSERT INTO t VALUES (?)", (fold("drop table near start value"),))
    query = match_query(question)
    if query is not None:
        db.execute("SELECT rowid FROM t WHERE t MATCH ?", (query,)).fetchall()  # never an error


def test_description_lines_the_text_layer_holds_are_not_counted_twice() -> None:
    text_layer = "Quarterly report\nRevenue rose 12% in the north region"
    description = (
        "Quarterly report\n"
        "Revenue rose 12% in the north region.\n"
        "A bar chart shows 4,812 units shipped in March."
    )
    assert novel_lines(description, text_layer) == "A bar chart shows 4,812 units shipped in March."
    assert novel_lines(description, "") == description
