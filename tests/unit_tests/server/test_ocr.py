"""OCR with the ``ocr`` extra (part of the test extra): the wheel's own models, nothing downloaded,
words kept apart in small print, a dense page read whole. Sockets are blocked here (the suite's
``--disable-socket``), so a download would fail the test."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from langchain_afarensis_vision.server import _ocr
from tests._printed import SURVEY, dense_text, printed, share_of_words

OLD_CUT = 2000  # characters: where the engine used to cut the text it read


@pytest.mark.disable_socket
def test_the_models_are_the_wheels_own_files_and_nothing_is_downloaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rapidocr.utils import download_file

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("RapidOCR tried to download a model")

    monkeypatch.setattr(download_file.DownloadFile, "run", refuse)
    _ocr._engine.cache_clear()
    engine = _ocr._engine()
    models = Path(str(importlib.import_module(_ocr.MODULE).__file__)).parent / "models"
    config = {
        "Det.model_path": engine.cfg.Det.model_path,
        "Rec.model_path": engine.cfg.Rec.model_path,
        "Cls.model_path": engine.cfg.Cls.model_path,
    }
    assert config == {name: str(models / file) for name, file in _ocr.MODELS.items()}
    assert all((models / file).is_file() for file in _ocr.MODELS.values())
    assert _ocr._recognise(printed("Hello OCR 42", points=20)) == "Hello OCR 42"


def test_small_print_keeps_the_spaces_between_words() -> None:
    # 10 pt at 96 dpi, 13-pixel letters: rapidocr-onnxruntime 1.4 read them as
    # "Customersatisfactionsurveysshowed", which no word search finds
    read = _ocr._recognise(printed(SURVEY, points=10, dpi=96))
    assert "Customer satisfaction surveys showed" in read
    assert "18,240 parcels" in read
    assert share_of_words(SURVEY, read) == 1.0


def test_a_dense_page_comes_back_whole() -> None:
    source = dense_text(2600)
    read = _ocr._recognise(printed(source, points=10, dpi=90))  # 768 pixels wide, 10 pt
    assert len(read) > OLD_CUT
    assert share_of_words(source, read) >= 0.98


def test_an_image_of_one_colour_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> None:
        raise AssertionError("the OCR engine ran")

    monkeypatch.setattr(_ocr, "_engine", refuse)
    assert _ocr._recognise(printed("")) == ""


def test_lines_without_a_letter_or_digit_are_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    class Read:
        txts = ("***", "Total 42", "\uffe5**", "")
        scores = (0.9, 0.9, 0.9, 0.9)

    monkeypatch.setattr(_ocr, "_engine", lambda: lambda image: Read())
    assert _ocr._recognise(printed("Total 42")) == "Total 42"
