"""Hostile PDFs are bounded like hostile images: a typed error naming file and page, the other
files indexed, no process past 600 MB, nothing hangs; a long PDF streams in flat memory.

Each run happens in a child interpreter (killed after a deadline) that renders with the
documents wing's own worker pool; it reports its own peak resident set (``VmHWM``) and the
largest of its rendering workers' (``RUSAGE_CHILDREN``, the pool's processes once joined).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.documents_corpus import HOSTILE, HOSTILE_PASSWORD, build_hostile_pdfs, build_long_pdf
from tests.reliability._child import run_child

MB = 1024 * 1024
ONE_INPUT_PEAK = 600 * MB
LONG_PDF_PEAK = 400 * MB

_RENDER = """
import json, resource, sys, time
from pathlib import Path
from langchain_afarensis_vision.documents._pages import PageImage, iter_pages

def peak():
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM"))
    return int(line.split()[1]) * 1024

if __name__ == "__main__":
    files, passwords = sys.argv[2:], {sys.argv[2]: sys.argv[1]} if sys.argv[1] else {}
    start = time.monotonic()
    pages, errors = 0, []
    for file, page in iter_pages(files, Path(files[0]).parent / "pages", workers=1,
                                 passwords=passwords):
        if isinstance(page, PageImage) and page.error is None:
            pages += 1
        else:
            why = str(getattr(page, "error", None) or page)
            errors.append([Path(file).name, getattr(page, "page", None), why])
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(json.dumps({"pages": pages, "errors": errors, "seconds": time.monotonic() - start,
                      "peak": peak(), "workers": workers}))
"""


def render(files: list[Path], password: str = "", timeout: float = 240) -> dict[str, object]:
    """Render ``files`` in a child process; what came out and what it cost."""
    return run_child(textwrap.dedent(_RENDER), [password, *map(str, files)], timeout)


EXPECTED = {
    "truncated.pdf": "cannot be read as a PDF",
    "garbage.pdf": "cannot be read as a PDF",
    "encrypted.pdf": "is encrypted: give its password",
    "page-loop.pdf": None,  # PDFium breaks the loop: no page, or a typed error
    "flate-bomb.pdf": "rendering it took more than",
    "huge-page.pdf": "",  # renders, at the size the model sees
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_pdf_is_a_typed_error_and_the_next_file_is_read(
    tmp_path: Path, name: str
) -> None:
    hostile = build_hostile_pdfs(tmp_path, [name])[name]
    good = build_long_pdf(tmp_path / "after.pdf", pages=2)
    result = render([hostile, good])
    errors = result["errors"]
    assert isinstance(errors, list)
    expected = EXPECTED[name]
    if expected:
        assert [e[0] for e in errors] == [name], errors
        assert expected in errors[0][2], errors
    elif expected == "":
        assert errors == []
    assert result["pages"] == (2 if name != "huge-page.pdf" else 3)  # the file after it: read
    assert int(result["peak"]) < ONE_INPUT_PEAK  # type: ignore[call-overload]
    assert int(result["workers"]) < ONE_INPUT_PEAK  # type: ignore[call-overload]


def test_an_encrypted_pdf_renders_with_its_password(tmp_path: Path) -> None:
    encrypted = build_hostile_pdfs(tmp_path, ["encrypted.pdf"])["encrypted.pdf"]
    result = render([encrypted], password=HOSTILE_PASSWORD)
    assert (result["pages"], result["errors"]) == (1, [])


def test_a_long_pdf_streams_in_flat_memory(tmp_path: Path) -> None:
    long = build_long_pdf(tmp_path / "long.pdf", pages=400)
    result = render([long], timeout=600)
    assert (result["pages"], result["errors"]) == (400, [])
    assert int(result["peak"]) + int(result["workers"]) < LONG_PDF_PEAK  # type: ignore[call-overload]
