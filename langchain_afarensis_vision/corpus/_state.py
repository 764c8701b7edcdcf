"""The output's state, in ``<out>.state`` beside it: the lock of its one writer, and its facts.

A run that writes ``out`` holds an OS lock on this file for as long as it runs (``fcntl.flock``
on POSIX, ``msvcrt.locking`` on Windows: the standard library's, no lock package needed). A
second run on the same output, in this process or another, is refused with
:class:`~.errors.OutputInUseError` before it reads, drops or sends anything; the system drops the
lock when the process ends however it ends (an exception, a crash, ``kill -9``), so there is never
a stale lock to clean up. The file is never removed or replaced: a lock on a file that was
replaced would lock nothing.

It holds one JSON object, rewritten in place by one ``write`` (padded to the length it had, so a
crash never leaves half of an old text behind) and synced: ``pid``, the run writing (named in a
second run's refusal). A dry run only reads it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Final

from langchain_afarensis_vision.errors import OutputInUseError

__all__ = ["OutputState", "state_path"]

_LOCKED_BYTE: Final = 1 << 30  # Windows locks a byte range: one past the text, which stays readable


def state_path(out: Path) -> Path:
    """The state file of the output ``out``."""
    return out.with_name(out.name + ".state")


class OutputState:
    """``<out>.state``: locked for writing (``read_only``: only read, never created)."""

    def __init__(self, out: Path, *, read_only: bool = False) -> None:
        self.path = state_path(out)
        self._fd: int | None = None
        if read_only:
            self.values = self._read()
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _lock(fd):
            os.close(fd)
            holder = self._read().get("pid")
            who = f"process {holder}" if isinstance(holder, int) else "another process"
            msg = (
                f"{out} is being written by another run ({who}, holding the lock on "
                f"{self.path}): two runs on one output would send each image twice and cross "
                "their lines. Wait for that run to end (or stop it: the lock goes with it), "
                "then run again to go on; or write to another output file."
            )
            raise OutputInUseError(msg)
        self._fd = fd
        self.values = self._read()
        self.save(pid=os.getpid())

    def save(self, **values: Any) -> None:
        """Set ``values`` and write the whole object in place, synced."""
        assert self._fd is not None, "only the run holding the lock writes the state"
        self.values.update(values)
        text = json.dumps(self.values).encode()
        size = os.fstat(self._fd).st_size
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, text.ljust(max(size - 1, len(text))) + b"\n")
        os.fsync(self._fd)

    def close(self) -> None:
        """Release the lock (closing the file does)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _read(self) -> dict[str, Any]:
        try:
            values = json.loads(self.path.read_bytes() or b"{}")
        except (OSError, ValueError):  # none yet, or not ours: nothing known
            return {}
        return values if isinstance(values, dict) else {}


def _lock(fd: int) -> bool:
    """Take the file's lock without waiting: whether it was free."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        os.lseek(fd, _LOCKED_BYTE, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
