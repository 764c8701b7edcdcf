"""A tiny progress bar: one stderr line redrawn in place, shown only on a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Counts finished items and redraws ``label: done/total (rate/s)`` after each one.

    Args:
        total: How many items there are.
        label: Text before the count.
        enabled: Draw or not; None draws only when ``stream`` is a TTY.
        stream: Where to draw; ``sys.stderr`` by default.
    """

    def __init__(
        self,
        total: int,
        label: str = "",
        *,
        enabled: bool | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self.total = total
        self.label = label
        self.count = 0
        self._stream = sys.stderr if stream is None else stream
        self.enabled = _is_tty(self._stream) if enabled is None else enabled
        self.enabled = self.enabled and self._stream is not None and total > 0
        self._start = time.monotonic()
        self._drawn = False

    def advance(self, n: int = 1, extra: str = "") -> None:
        """Count ``n`` more finished items and redraw, with ``extra`` after the rate."""
        self.count += n
        if not self.enabled:
            return
        rate = self.count / max(time.monotonic() - self._start, 1e-6)
        prefix = f"{self.label}: " if self.label else ""
        extra = f" {extra}\033[K" if extra else ""  # and clear what a longer line left
        self._stream.write(f"\r{prefix}{self.count}/{self.total} ({rate:.1f}/s){extra}")
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        """End the line, if anything was drawn."""
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _is_tty(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False
