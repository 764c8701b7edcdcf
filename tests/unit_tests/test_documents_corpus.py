"""The synthetic document corpus keeps its promises (tests/documents_corpus.py).

Same seed, same bytes; a ``text`` fact is in its gold page's text layer; ``raster`` and
``vector`` facts are not (their words are pixels or glyph outlines); a ``scan`` page has no
text layer; every gold page exists; the hostile PDFs are what their names say.
"""

from __future__ import annotations

import zlib
from collections import Counter
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from tests.documents_corpus import (
    HOSTILE_PASSWORD,
    KINDS,
    Corpus,
    _flate_bomb,
    build_corpus,
    build_hostile_pdfs,
    build_long_pdf,
    check_corpus,
    page_texts,
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return build_corpus(tmp_path_factory.mktemp("corpus"))


def _contents(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    first = build_corpus(tmp_path / "a", pdfs=6, seed=3)
    second = build_corpus(tmp_path / "b", pdfs=6, seed=3)
    other = build_corpus(tmp_path / "c", pdfs=6, seed=4)
    assert first.questions == second.questions
    assert _contents(tmp_path / "a") == _contents(tmp_path / "b")
    assert other.questions != first.questions
    assert _contents(tmp_path / "a") != _contents(tmp_path / "c")


def test_the_corpus_has_its_shape(corpus: Corpus) -> None:
    pdfs = [f for f in corpus.files if f.endswith(".pdf")]
    assert len(pdfs) == 30
    counts = [len(page_texts(corpus.directory / f)) for f in pdfs]
    assert max(counts) >= 16
    assert sum(1 <= c <= 6 for c in counts) >= 25
    assert corpus.pages == sum(counts) + len(corpus.files) - len(pdfs)
    assert {f.rsplit(".", 1)[1] for f in corpus.files} == {"pdf", "png", "jpg"}
    assert set(Counter(q.kind for q in corpus.questions)) == set(KINDS)
    assert min(Counter(q.kind for q in corpus.questions).values()) >= 10
    assert any(q.small_print for q in corpus.questions)
    assert any(len(q.gold) > 1 for q in corpus.questions)


def test_facts_are_where_their_kind_says(corpus: Corpus) -> None:
    assert check_corpus(corpus) == []


def test_the_check_catches_a_fact_in_the_wrong_place(corpus: Corpus) -> None:
    """check_corpus is not vacuous: a vector question pointed at a text page is reported."""
    text = next(q for q in corpus.questions if q.kind == "text")
    vector = next(q for q in corpus.questions if q.kind == "vector")
    swapped = [
        type(text)(text.text, "vector", text.gold, text.answer, text.fact, name=text.name),
        type(vector)(
            vector.text, "text", vector.gold, vector.answer, vector.fact, name=vector.name
        ),
        type(text)(
            text.text, "text", [(text.gold[0][0], 99)], text.answer, text.fact, name=text.name
        ),
    ]
    for question in swapped:
        assert check_corpus(Corpus(corpus.directory, corpus.files, [question], corpus.pages))


def test_questions_paraphrase_their_facts(corpus: Corpus) -> None:
    for question in corpus.questions:
        assert question.name in question.text
        assert question.answer not in question.text
        assert question.text.lower() != question.fact.lower()


def test_hostile_pdfs(tmp_path: Path) -> None:
    paths = build_hostile_pdfs(
        tmp_path,
        ["truncated.pdf", "garbage.pdf", "encrypted.pdf", "huge-page.pdf", "page-loop.pdf"],
    )
    for name in ("truncated.pdf", "garbage.pdf", "encrypted.pdf"):
        with pytest.raises(pdfium.PdfiumError):
            pdfium.PdfDocument(str(paths[name]))
    unlocked = pdfium.PdfDocument(str(paths["encrypted.pdf"]), password=HOSTILE_PASSWORD)
    assert "hostile corpus" in unlocked[0].get_textpage().get_text_range()
    assert pdfium.PdfDocument(str(paths["huge-page.pdf"]))[0].get_size() == (14400, 14400)
    with pytest.raises(pdfium.PdfiumError):
        pdfium.PdfDocument(str(paths["page-loop.pdf"]))[0]


def test_the_flate_bomb_inflates_as_claimed() -> None:
    data = _flate_bomb(8 << 20)
    packed = data[data.index(b"stream\n") + 7 : data.rindex(b"\nendstream")]
    inflated = zlib.decompress(packed)  # checks the Adler-32 too
    assert len(inflated) == 8 << 20
    assert set(inflated) == {ord(" ")}
    assert len(packed) < (8 << 20) // 500


def test_the_long_pdf(tmp_path: Path) -> None:
    texts = page_texts(build_long_pdf(tmp_path / "long.pdf", pages=2000))
    assert len(texts) == 2000
    assert texts[1999] == "Page 2000 of a long report."
