"""Which local files ``describe_image`` may read: the path policy.

An agent's arguments come from a language model and are treated as hostile. Local files are
read only inside ``allowed_dirs`` (none by default). A relative name is looked up in each
allowed directory in order (``flower.jpg`` in ``charts/``), then, if it starts with an allowed
directory's own name, below that directory (``charts/flower.jpg``), then relative to the working
directory if that lands inside an allowed one (``data/charts/flower.jpg`` for ``data/charts``).
``..`` escapes, absolute paths elsewhere (refused before the file system is touched, so they
cannot probe which files exist), ``~``, UNC paths and NUL bytes are refused. Symlinks are
resolved and containment is checked again afterwards. A refusal of a name that is missing or
outside names the allowed directories and a few of their entries, so the agent can correct
itself.

The resolved path is then opened one component at a time from the allowed directory's own
descriptor (``os.open(..., dir_fd=...)``), none of them following a symlink: a directory swapped
for a symlink between the check and the open (a race an agent's neighbour could run) is refused,
never followed outside. Nor is a hard link (a file with more than one name may be one from
outside under an inside name). Only regular files are opened (a FIFO would block ``open``; the last
component is checked with ``lstat`` first and opened non-blocking), and at most ``max_bytes``
are read. Where ``os.open`` takes no ``dir_fd`` (Windows) the resolved path is opened directly.
Each refusal is an :class:`ImageRefused` whose message is meant for the agent; it repeats at
most the first :data:`SHOWN_CHARS` characters of a name (:func:`shown`, :mod:`._sources.urls` too).
"""

from __future__ import annotations

import errno
import itertools
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from langchain_afarensis_vision._sources.read import MAX_INPUT_BYTES

IMAGE_SUFFIXES: Final = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".webp", ".gif", ".bmp", ".dib", ".tif", ".tiff"}
    | {".ico", ".ppm", ".pgm", ".pbm", ".avif", ".heic", ".heif", ".tga", ".mpo"}
)
"""Suffixes (any case) of image files: what the loader's directory scan picks up, and what a
refusal lists of an allowed directory."""
SHOWN_CHARS: Final = 100
"""Most characters of a name or URL a refusal repeats."""
_SHOWN_DIRS: Final = 4  # allowed directories a refusal names
_SHOWN_ENTRIES: Final = 6  # entries of an allowed directory a refusal names
_SCANNED_ENTRIES: Final = 200  # at most this many are listed to choose them (a huge directory)
_O_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
_O_FLAGS |= getattr(os, "O_BINARY", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
_BENEATH = os.open in os.supports_dir_fd and hasattr(os, "O_NOFOLLOW")
# What opening a component that became a symlink or a file raises (FreeBSD: EMLINK).
_SWAPPED = frozenset({errno.ELOOP, errno.ENOTDIR, errno.EMLINK})


class ImageRefused(Exception):
    """The policy refuses an image; the message says why, in words meant for the agent."""


def shown(text: str, *, quoted: bool = True) -> str:
    """``text`` as a refusal repeats it: at most its first :data:`SHOWN_CHARS` characters.

    A longer text (an agent may send a 200 KB name) is cut there and followed by ``...`` and
    its length, so a refusal stays short whatever it was given.
    """
    start = text[:SHOWN_CHARS]
    start = repr(start) if quoted else start
    return start if len(text) <= SHOWN_CHARS else f"{start}... ({len(text):,} characters)"


def find_local_file(name: str, allowed_dirs: Sequence[Path]) -> Path:
    """The real path of the file ``name`` names inside one of ``allowed_dirs``."""
    roots = _roots(allowed_dirs)
    given_dirs = [Path(os.path.abspath(d)) for d in allowed_dirs]
    try:
        _check_path_syntax(name, [*roots, *given_dirs])
    except ImageRefused as exc:
        raise ImageRefused(f"{exc}.{names_hint(allowed_dirs)}") from None
    for candidate in _candidates(name, roots, given_dirs):
        try:
            real = candidate.resolve(strict=True)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except (OSError, RuntimeError) as exc:  # symlink loops, permissions
            msg = f"{shown(name)} cannot be resolved ({type(exc).__name__})"
            raise ImageRefused(msg) from None
        if not any(real.is_relative_to(root) for root in roots):
            msg = f"{shown(name)} leads outside the allowed directories (via a symlink)"
            raise ImageRefused(msg)
        return real
    msg = f"there is no file {shown(name)} in the allowed directories.{names_hint(allowed_dirs)}"
    raise ImageRefused(msg)


def _candidates(name: str, roots: Sequence[Path], given_dirs: Sequence[Path]) -> list[Path]:
    """Where a name may be: in each root; below a root it starts with; from the working dir."""
    given = Path(name)
    if given.is_absolute():
        return [given]
    found = [root / name for root in roots]
    first, *rest = Path(os.path.normpath(name)).parts
    if rest:  # "charts/flower.jpg" for the allowed directory "./charts" (or "/srv/charts")
        named = {d.name: d for d in given_dirs} | {root.name: root for root in roots}
        found += [named[first] / Path(*rest)] if first in named else []
    here = Path(os.path.abspath(name))  # lexically inside an allowed directory, or not tried
    if any(here.is_relative_to(d) for d in [*roots, *given_dirs]):
        found.append(here)
    return found


def names_hint(allowed_dirs: Sequence[Path]) -> str:
    """What names the agent may give: relative to which directories, with a few entries each."""
    parts = [f"{shown(os.fspath(d))}{_some_entries(Path(d))}" for d in allowed_dirs[:_SHOWN_DIRS]]
    more = "; ..." if len(allowed_dirs) > _SHOWN_DIRS else ""
    return " Give a file name relative to an allowed directory: " + "; ".join(parts) + more + "."


def _some_entries(directory: Path, most: int = _SHOWN_ENTRIES) -> str:
    """`` (holds 'a.png', 'sub/', ...)``: the first of its files and folders, by name."""
    try:
        with os.scandir(directory) as scan:
            listed = list(itertools.islice(scan, _SCANNED_ENTRIES))
    except OSError:
        return " (missing)"
    names = [name for name in map(_listed_name, listed) if name]
    if not names:
        return " (empty)"
    more = ", ..." if len(names) > most else ""
    return " (holds " + ", ".join(map(repr, sorted(names)[:most])) + more + ")"


def _listed_name(entry: os.DirEntry[str]) -> str | None:
    """A visible image file's name, a folder's with ``/``; None for the rest (other files)."""
    if entry.name.startswith("."):
        return None
    try:
        if entry.is_dir():
            return entry.name + "/"
        image = Path(entry.name).suffix.lower() in IMAGE_SUFFIXES
        return entry.name if image and entry.is_file() else None
    except OSError:  # a symlink loop
        return None


def read_local_file(
    path: Path, allowed_dirs: Sequence[Path], max_bytes: int = MAX_INPUT_BYTES
) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes``.

    ``path`` is a real path inside ``allowed_dirs`` (from :func:`find_local_file`): it is opened
    below that directory without following any symlink, so it cannot be raced outside.
    """
    try:
        fd = _open_beneath(path, _roots(allowed_dirs), max_bytes)
    except OSError as exc:
        if exc.errno in _SWAPPED:
            msg = f"{shown(path.name)} changed while being opened (a directory was swapped)"
            raise ImageRefused(msg) from None
        reason = exc.strerror or type(exc).__name__
        raise ImageRefused(f"{shown(path.name)} cannot be opened ({reason})") from None
    with os.fdopen(fd, "rb") as file:
        _check_regular(os.fstat(file.fileno()), path, max_bytes)  # swapped since the lstat?
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageRefused(f"{shown(path.name)} is larger than {max_bytes:,} bytes")
    return data


def _open_beneath(path: Path, roots: Sequence[Path], max_bytes: int) -> int:
    """A descriptor for ``path``, each component opened from its parent's without following."""
    root = next((root for root in roots if path.is_relative_to(root)), None)
    if root is None:
        raise ImageRefused(f"{shown(path.name)} leads outside the allowed directories")
    if not _BENEATH or path == root:
        _check_regular(os.stat(path), path, max_bytes)  # before open(): a FIFO would block it
        return os.open(path, _O_FLAGS)
    *parents, name = path.relative_to(root).parts
    directory = os.open(root, _DIR_FLAGS)
    try:
        for part in parents:
            inner = os.open(part, _DIR_FLAGS, dir_fd=directory)
            os.close(directory)
            directory = inner
        info = os.stat(name, dir_fd=directory, follow_symlinks=False)
        if stat.S_ISLNK(info.st_mode):
            raise OSError(errno.ELOOP, "a symlink")
        _check_regular(info, path, max_bytes)  # before open(): a FIFO would block it
        return os.open(name, _O_FLAGS, dir_fd=directory)
    finally:
        os.close(directory)


def _roots(allowed_dirs: Sequence[Path]) -> list[Path]:
    if not allowed_dirs:
        raise ImageRefused("local files are disabled: this tool was given no allowed directories")
    roots = []
    for directory in allowed_dirs:
        try:
            roots.append(Path(directory).resolve(strict=True))
        except (OSError, RuntimeError):
            continue  # an allowed directory that does not exist holds nothing
    return roots


def _check_path_syntax(name: str, roots: Sequence[Path]) -> None:
    if not name.strip():
        raise ImageRefused("the image name is empty")
    if name.startswith(("\\\\", "//")):
        raise ImageRefused("network (UNC) paths are not accepted")
    if name.startswith("~"):
        raise ImageRefused("'~' is not expanded: give a name inside the allowed directories")
    normal = os.path.normpath(name)
    if normal == ".." or normal.startswith(".." + os.sep):
        raise ImageRefused(f"{shown(name)} leads outside the allowed directories ('..')")
    if os.path.isabs(normal) and not any(Path(normal).is_relative_to(root) for root in roots):
        raise ImageRefused(f"{shown(name)} is outside the allowed directories")


def _check_regular(info: os.stat_result, path: Path, max_bytes: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        msg = f"{shown(path.name)} is not a regular file (a directory, device or FIFO)"
        raise ImageRefused(msg)
    if info.st_size > max_bytes:
        msg = f"{shown(path.name)} is {info.st_size:,} bytes; at most {max_bytes:,}"
        raise ImageRefused(msg)
    if info.st_nlink > 1:  # the same file may stand under a name outside: no check sees it
        msg = (
            f"{shown(path.name)} has {info.st_nlink} hard links, so it may be a file from "
            "outside the allowed directories: copy it into an allowed directory instead"
        )
        raise ImageRefused(msg)
