"""``_progress.Progress``: one stderr line, redrawn, only on a terminal unless asked."""

from __future__ import annotations

import io

from langchain_afarensis_vision._progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_draws_on_a_terminal_and_ends_the_line() -> None:
    stream = Terminal()
    with Progress(3, "Describing images", stream=stream) as progress:
        for _ in range(3):
            progress.advance()
    text = stream.getvalue()
    assert text.count("\r") == 3
    assert "\rDescribing images: 3/3 (" in text
    assert text.endswith("/s)\n")
    assert progress.count == 3


def test_silent_off_a_terminal_when_disabled_or_empty() -> None:
    for stream, enabled, total in (
        (io.StringIO(), None, 3),
        (Terminal(), False, 3),
        (Terminal(), None, 0),
    ):
        with Progress(total, stream=stream, enabled=enabled) as progress:
            progress.advance()
        assert stream.getvalue() == ""
        assert progress.count == 1


def test_forced_on_a_plain_stream() -> None:
    stream = io.StringIO()
    with Progress(2, stream=stream, enabled=True) as progress:
        progress.advance(2)
    assert stream.getvalue().startswith("\r2/2 (")
