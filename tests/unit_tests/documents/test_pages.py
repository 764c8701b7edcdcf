"""``documents._pages``: PDF pages at the size the model sees, text layers, typed failures."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from langchain_afarensis_vision._api.contract import effective_size
from langchain_afarensis_vision.documents._pages import (
    PageImage,
    iter_pages,
    page_pixels,
    render_pages,
)
from langchain_afarensis_vision.errors import InvalidDocumentError
from tests.documents_support import encrypted_pdf, text_pdf

HERE = Path(__file__).resolve().parents[2] / "data" / "images"


@pytest.mark.parametrize(
    ("points", "pixels"),
    [
        ((612, 792), (768, 993)),  # US Letter: ~90 dpi, as GPT-4V sees a whole page
        ((595.28, 841.89), (768, 1086)),  # A4
        ((792, 612), (993, 768)),  # landscape
        ((14400, 14400), (768, 768)),  # a 200-inch page: the same pixels as any square page
        ((3, 2000), (3, 2048)),  # a ribbon: never wider than 2048 on its long side
    ],
)
def test_pages_render_at_the_size_the_model_sees(
    points: tuple[float, float], pixels: tuple[int, int]
) -> None:
    assert page_pixels(*points) == pixels
    assert effective_size(*pixels, "high") == pixels  # sent as rendered: nothing to shrink


def test_a_pdf_page_is_written_once_by_its_digest_with_its_text_layer(tmp_path: Path) -> None:
    pdf = text_pdf(tmp_path / "r.pdf", ["Alpha page", "Beta page 4,812 MWh"])
    pages = render_pages(str(pdf), 0, 8, str(tmp_path / "pages"))
    assert [(p.page, p.page_count, p.has_text_layer) for p in pages] == [(1, 2, True), (2, 2, True)]
    assert "4,812 MWh" in pages[1].text
    written = tmp_path / "pages" / f"{pages[1].sha256}.png"
    with Image.open(written) as image:
        assert image.size == (pages[1].width, pages[1].height) == (768, 993)
    again = render_pages(str(pdf), 1, 1, str(tmp_path / "pages"))
    assert again[0].sha256 == pages[1].sha256  # the same page renders to the same bytes


def test_an_image_file_is_page_one_prepared_as_any_image(tmp_path: Path) -> None:
    (page,) = render_pages(str(HERE / "hopper.jpg"), 0, 8, str(tmp_path / "pages"))
    assert (page.page, page.page_count, page.has_text_layer, page.text) == (1, 1, False, "")
    assert (tmp_path / "pages" / f"{page.sha256}.jpg").is_file()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"%PDF-1.7\nnot really\n", "cannot be read as a PDF"),
        (b"", "cannot be read as a PDF"),
    ],
)
def test_a_broken_pdf_is_a_typed_error_naming_the_file(
    tmp_path: Path, data: bytes, message: str
) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(data)
    with pytest.raises(InvalidDocumentError, match=message) as raised:
        render_pages(str(broken), 0, 8, str(tmp_path / "pages"))
    assert raised.value.source == str(broken)


def test_an_encrypted_pdf_asks_for_its_password_and_opens_with_it(tmp_path: Path) -> None:
    pdf = encrypted_pdf(tmp_path / "secret.pdf", "Hidden figure 77", password="pw")
    with pytest.raises(InvalidDocumentError, match="is encrypted: give its password"):
        render_pages(str(pdf), 0, 1, str(tmp_path / "pages"))
    with pytest.raises(InvalidDocumentError, match="the password given is not"):
        render_pages(str(pdf), 0, 1, str(tmp_path / "pages"), "wrong")
    (page,) = render_pages(str(pdf), 0, 1, str(tmp_path / "pages"), "pw")
    assert "Hidden figure 77" in page.text


def test_pages_stream_in_order_and_a_bad_file_does_not_stop_the_others(tmp_path: Path) -> None:
    good = text_pdf(tmp_path / "good.pdf", [f"page {n}" for n in range(1, 12)])
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4 junk")
    image = HERE / "hopper.png"
    files = [str(bad), str(good), str(image)]
    out = list(iter_pages(files, tmp_path / "pages", workers=0))
    assert isinstance(out[0][1], InvalidDocumentError)
    numbers = [(Path(f).name, p.page) for f, p in out[1:] if isinstance(p, PageImage)]
    assert numbers == [("good.pdf", n) for n in range(1, 12)] + [("hopper.png", 1)]
