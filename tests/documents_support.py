"""Small PDFs for the documents tests, written with reportlab (BSD), deterministic."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from reportlab.lib.pagesizes import letter
from reportlab.lib.pdfencrypt import StandardEncryption
from reportlab.pdfgen import canvas


def text_pdf(path: Path, pages: Sequence[str], *, size: tuple[float, float] = letter) -> Path:
    """A PDF with one page per text (each line of it a line on the page), text layer included."""
    pdf = canvas.Canvas(str(path), pagesize=size, invariant=True)
    for text in pages:
        y = size[1] - 72
        for line in text.splitlines():
            pdf.setFont("Helvetica", 14)
            pdf.drawString(72, y, line)
            y -= 20
        pdf.showPage()
    pdf.save()
    return path


def encrypted_pdf(path: Path, text: str, *, password: str) -> Path:
    """A one-page PDF that opens only with ``password``."""
    encrypt = StandardEncryption(password, ownerPassword=password + "-owner", strength=128)
    pdf = canvas.Canvas(str(path), pagesize=letter, invariant=True, encrypt=encrypt)
    pdf.setFont("Helvetica", 14)
    pdf.drawString(72, 700, text)
    pdf.showPage()
    pdf.save()
    return path
