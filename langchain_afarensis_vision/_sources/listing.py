"""Which sources a list of entries names: files, globs, folders, ``@list`` files and URLs.

Nothing is read here but directory listings and ``@list`` files: the loader, the CLI and the
corpus job all name images this way, and each reads them through :mod:`.read` later.
"""

from __future__ import annotations

import functools
import glob
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeAlias

from langchain_afarensis_vision._api.contract import is_fetched_url
from langchain_afarensis_vision._sources.paths import IMAGE_SUFFIXES

__all__ = [
    "IMAGE_SUFFIXES",
    "NoImagesFoundWarning",
    "PathLike",
    "image_files",
    "iter_image_sources",
]

PathLike: TypeAlias = str | os.PathLike[str]


def image_files(entries: Sequence[PathLike], recursive: bool = False) -> list[str]:
    """Every source the entries name, in order, as a list: see :func:`iter_image_sources`."""
    return list(iter_image_sources(entries, recursive))


def iter_image_sources(entries: Iterable[PathLike], recursive: bool = False) -> Iterator[str]:
    """Every source the entries name, one at a time (nothing is read but directory listings).

    A directory gives its image files by suffix (sorted, its own files before its
    subdirectories', which come with ``recursive``; hidden ones skipped), a glob its files
    (``**`` recurses), ``@list.txt`` the sources it lists (one a line; blank lines and ``#``
    comments skipped); an ``http(s)`` URL or any other path is given as it is. A glob, directory
    or list that names nothing gives a :class:`NoImagesFoundWarning` (a path that does not exist
    fails later, when it is read). The loader, the CLI and the corpus job all name images this
    way.
    """
    for entry in entries:
        text = os.fspath(entry)
        if text.startswith("@"):
            listed = iter_image_sources(_listed(text[1:]), recursive)
            yield from _warn_if_none(text, listed, lambda: "lists no sources")
        elif is_fetched_url(text):
            yield text
        elif os.path.isdir(text):
            files = _image_files_in(text, recursive)
            yield from _warn_if_none(text, files, functools.partial(_no_images_in, text, recursive))
        elif not os.path.exists(text) and any(char in text for char in "*?["):
            found = sorted(p for p in glob.iglob(text, recursive=True) if os.path.isfile(p))
            yield from _warn_if_none(text, iter(found), lambda: "matches no file")
        else:
            yield text


class NoImagesFoundWarning(UserWarning):
    """A glob, directory or ``@list`` that named no image: ``entry`` is what was given."""

    def __init__(self, entry: str, reason: str) -> None:
        super().__init__(f"{entry!r} {reason}")
        self.entry = entry


def _warn_if_none(entry: str, sources: Iterator[str], why: Callable[[], str]) -> Iterator[str]:
    """``sources``, then a :class:`NoImagesFoundWarning` if there were none."""
    found = False
    for source in sources:
        found = True
        yield source
    if not found:
        warnings.warn(NoImagesFoundWarning(entry, why()), stacklevel=3)


def _no_images_in(directory: str, recursive: bool) -> str:
    reason = "holds no image files (picked by suffix: .png, .jpg, .webp, .gif, .tif, ...)"
    if not recursive and any(p.is_dir() for p in Path(directory).iterdir()):
        reason += "; its subdirectories are scanned with recursive=True"
    return reason


def _listed(path: str) -> Iterator[str]:
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if (source := line.strip()) and not source.startswith("#"):
                yield source


def _image_files_in(root: str, recursive: bool) -> Iterator[str]:
    """Image files under ``root`` by suffix, sorted per directory, hidden ones skipped."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                yield os.path.join(folder, name)
