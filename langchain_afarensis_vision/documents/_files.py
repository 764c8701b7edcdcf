"""Which documents an index run is given, and whether each changed since it was indexed."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from langchain_afarensis_vision.documents._pages import DOCUMENT_SUFFIXES
from langchain_afarensis_vision.documents._store import FileRow

__all__ = ["documents", "file_row"]

_CHUNK: Final = 1 << 20


def documents(
    paths: Iterable[str | os.PathLike[str]],
) -> tuple[dict[str, tuple[str, str]], set[str]]:
    """``{name as indexed: (root, absolute path)}`` for the documents ``paths`` name."""
    found: dict[str, tuple[str, str]] = {}
    roots: set[str] = set()
    for entry in paths:
        given = Path(entry)
        if given.is_dir():
            root = os.path.abspath(given)
            roots.add(root)
            for path in _walk(given):
                found[path.relative_to(given).as_posix()] = (root, os.path.abspath(path))
        elif given.is_file():
            found[given.name] = (os.path.abspath(given.parent), os.path.abspath(given))
        else:
            msg = f"{os.fspath(entry)!r} is neither a file nor a folder"
            raise FileNotFoundError(msg)
    return found, roots


def _walk(directory: Path) -> Iterator[Path]:
    for base, folders, files in os.walk(directory):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in DOCUMENT_SUFFIXES:
                yield Path(base) / name


def file_row(name: str, root: str, path: str, known: FileRow | None) -> FileRow | None:
    """The file's row as it is now; None when its size and time are those indexed."""
    info = os.stat(path)
    same = known is not None and (known.size, known.mtime_ns) == (info.st_size, info.st_mtime_ns)
    if same and known is not None and known.path == path and known.error is None:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return FileRow(name, root, path, info.st_size, info.st_mtime_ns, digest.hexdigest(), 0, None)
