"""``_sources.paths``: which local files the tool may read, through ``_sources.urls.load_image``."""

from __future__ import annotations

import os
import re
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from langchain_afarensis_vision._sources import paths as _paths
from langchain_afarensis_vision._sources import urls as _safety
from langchain_afarensis_vision._sources.urls import ImagePolicy, ImageRefused
from tests.unit_tests.conftest import dirs


def load(name: str, tree: Path, max_file_bytes: int = 5_000) -> _safety.LoadedImage:
    return _safety.load_image(name, ImagePolicy(dirs(tree), max_file_bytes=max_file_bytes))


@pytest.mark.parametrize(
    ("name", "found"),
    [
        pytest.param("chart.png", "allowed/chart.png", id="relative-name"),
        pytest.param("sub/nested.png", "allowed/sub/nested.png", id="nested"),
        pytest.param("sub/../chart.png", "allowed/chart.png", id="dotdot-inside"),
        pytest.param("./chart.png", "allowed/chart.png", id="dot-slash"),
        pytest.param("other.png", "allowed2/other.png", id="second-allowed-dir"),
        pytest.param("link_in.png", "allowed/chart.png", id="symlink-inside"),
        pytest.param("{tree}/allowed/chart.png", "allowed/chart.png", id="absolute-inside"),
        pytest.param("{tree}/allowed2/other.png", "allowed2/other.png", id="absolute-second"),
    ],
)
def test_paths_accepted(tree: Path, name: str, found: str) -> None:
    loaded = load(name.format(tree=tree), tree)
    assert loaded.source == str((tree / found).resolve())
    assert loaded.data == (tree / found).read_bytes()


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        pytest.param("../outside/secret.png", "'..'", id="dotdot-escape"),
        pytest.param("../../../../etc/passwd", "'..'", id="dotdot-etc-passwd"),
        pytest.param("sub/../../outside/secret.png", "'..'", id="dotdot-nested-escape"),
        pytest.param("/etc/passwd", "outside the allowed directories", id="absolute-etc"),
        pytest.param("/no/such/file.png", "outside the allowed", id="absolute-missing"),
        pytest.param("{tree}/outside/secret.png", "outside the allowed", id="absolute-sibling"),
        pytest.param("{tree}/allowed/../outside/secret.png", "outside", id="absolute-dotdot"),
        pytest.param("link_out.png", "via a symlink", id="symlink-escape"),
        pytest.param("dir_out/secret.png", "via a symlink", id="symlinked-dir-escape"),
        pytest.param("loop", "cannot be resolved", id="symlink-loop"),
        pytest.param("fifo.png", "not a regular file", id="fifo"),
        pytest.param("dir", "not a regular file", id="directory"),
        pytest.param("big.png", "10,000 bytes; at most 5,000", id="too-big"),
        pytest.param("missing.png", "no file 'missing.png'", id="missing"),
        pytest.param("chart.png\x00.txt", "NUL byte", id="nul"),
        pytest.param("\\\\server\\share\\chart.png", "UNC", id="unc-backslash"),
        pytest.param("//server/share/chart.png", "UNC", id="unc-slash"),
        pytest.param("~/chart.png", "'~'", id="tilde"),
        pytest.param("~root/.ssh/id_rsa", "'~'", id="tilde-user"),
        pytest.param("C:\\Windows\\win.ini", "no file", id="windows-drive"),
        pytest.param("..\\..\\etc\\passwd", "no file", id="backslash-dotdot"),
        pytest.param("", "empty", id="empty"),
        pytest.param("   ", "empty", id="blank"),
    ],
)
def test_paths_refused(tree: Path, name: str, reason: str) -> None:
    with pytest.raises(ImageRefused, match=re.escape(reason)):
        load(name.format(tree=tree), tree)


@pytest.mark.parametrize(
    ("name", "found"),
    [
        pytest.param("allowed/chart.png", "allowed/chart.png", id="starts-with-the-dir-name"),
        pytest.param("./allowed/sub/nested.png", "allowed/sub/nested.png", id="dot-dir-name"),
        pytest.param("allowed2/other.png", "allowed2/other.png", id="second-dir-name"),
    ],
)
def test_names_starting_with_an_allowed_directory(
    tree: Path, name: str, found: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tree / "outside")  # not relative to the working directory
    assert load(name, tree).source == str((tree / found).resolve())


def test_names_relative_to_the_working_directory(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's case: allowed_dirs=["./charts"], and the agent says "charts/flower.jpg"."""
    monkeypatch.chdir(tree.parent)
    name = f"{tree.name}/allowed/sub/nested.png"
    assert load(name, tree).source == str((tree / "allowed/sub/nested.png").resolve())
    policy = ImagePolicy([Path(f"./{tree.name}/allowed")])
    assert _safety.load_image(name, policy).data == (tree / "allowed/sub/nested.png").read_bytes()


def test_names_through_the_directory_name_are_still_contained(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tree)
    with pytest.raises(ImageRefused, match="via a symlink"):
        load("allowed/link_out.png", tree)
    with pytest.raises(ImageRefused, match="no file"):
        load("outside/secret.png", tree)  # exists from the working directory, but not allowed
    with pytest.raises(ImageRefused, match=re.escape("'..'")):
        load("allowed/../../outside/secret.png", tree)


def test_a_missing_name_is_told_which_names_it_may_use(tree: Path) -> None:
    with pytest.raises(ImageRefused) as raised:
        load("charts/flower.jpg", tree)
    message = str(raised.value)
    assert message.startswith("there is no file 'charts/flower.jpg' in the allowed directories.")
    assert "Give a file name relative to an allowed directory: " in message
    allowed = f"'{tree / 'allowed'}' (holds 'big.png', 'chart.png', 'dir/', 'dir_out/', "
    allowed += "'link_in.png', 'link_out.png', ...)"
    assert allowed in message
    assert f"'{tree / 'allowed2'}' (holds 'other.png')" in message


def test_a_name_outside_is_told_which_names_it_may_use(tree: Path) -> None:
    for name in ("/etc/passwd", "../outside/secret.png"):
        with pytest.raises(ImageRefused, match=r"relative to an allowed directory.*'other\.png'"):
            load(name, tree)
    policy = ImagePolicy([tree / "gone", tree / "allowed2"])
    with pytest.raises(ImageRefused, match=r"gone' \(missing\);"):
        _safety.load_image("nope.png", policy)


def test_no_allowed_dirs_refuses_every_path(tree: Path) -> None:
    with pytest.raises(ImageRefused, match="given no allowed directories"):
        _safety.load_image(str(tree / "allowed" / "chart.png"), ImagePolicy())


def test_missing_allowed_dir_is_skipped(tree: Path) -> None:
    policy = ImagePolicy([tree / "gone", tree / "allowed"])
    assert _safety.load_image("chart.png", policy).data == (tree / "allowed/chart.png").read_bytes()


def test_fifo_is_refused_without_opening(tree: Path) -> None:
    # Opening a FIFO for reading blocks until a writer comes: the policy must never open it.
    with pytest.raises(ImageRefused, match="not a regular file"):
        _paths.read_local_file(tree / "allowed" / "fifo.png", dirs(tree))


def test_a_hard_link_to_an_outside_file_is_refused(tree: Path) -> None:
    # A hard link is the outside file itself under an inside name: no path check can see it.
    os.link(tree / "outside" / "secret.png", tree / "allowed" / "hard.png")
    with pytest.raises(ImageRefused, match=r"'hard\.png' has 2 hard links"):
        load("hard.png", tree)
    with pytest.raises(ImageRefused, match="copy it into an allowed directory"):
        _paths.read_local_file(tree / "allowed" / "hard.png", dirs(tree))


def test_file_over_the_cap_is_refused_by_size(tree: Path) -> None:
    with pytest.raises(ImageRefused, match=r"'chart.png' is \d+ bytes; at most 100"):
        _paths.read_local_file(tree / "allowed" / "chart.png", dirs(tree), max_bytes=100)


def test_file_grown_after_the_checks_is_cut(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_paths, "_check_regular", lambda *args: None)  # as if it grew since
    with pytest.raises(ImageRefused, match="larger than 100 bytes"):
        _paths.read_local_file(tree / "allowed" / "chart.png", dirs(tree), max_bytes=100)


# -- a directory swapped for a symlink while the tool reads -------------------------------------


class _Flipper(threading.Thread):
    """Swaps ``allowed/sub`` between a real directory and a symlink to ``outside`` until told."""

    def __init__(self, allowed: Path, outside: Path) -> None:
        super().__init__(daemon=True)
        self.sub, self.real, self.link = (allowed / n for n in ("sub", "sub-real", "sub-link"))
        self.link.symlink_to(outside, target_is_directory=True)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            os.rename(self.sub, self.real)  # sub: gone, then a symlink to outside/
            os.rename(self.link, self.sub)
            os.rename(self.sub, self.link)  # sub: gone, then the real directory again
            os.rename(self.real, self.sub)


def test_a_directory_swapped_for_a_symlink_cannot_lead_outside(tree: Path) -> None:
    """Resolving ``sub/x.png`` and then opening it is a race: ``sub`` may become a symlink to
    ``outside/`` in between. Every component is opened without following symlinks, so no read
    returns outside's bytes (before: about 2% of the reads did)."""
    inside, outside = tree / "allowed" / "sub" / "x.png", tree / "outside" / "x.png"
    inside.write_bytes(b"inside")
    outside.write_bytes(b"OUTSIDE")
    policy = ImagePolicy(dirs(tree))
    flipper = _Flipper(tree / "allowed", tree / "outside")
    seen: Counter[str] = Counter()
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)  # interleave the threads finely
    flipper.start()
    try:
        for _ in range(10_000):
            try:
                seen[_safety.load_image("sub/x.png", policy).data.decode()] += 1  # type: ignore[union-attr]
            except ImageRefused as refused:
                seen[str(refused).split(" (")[0]] += 1
    finally:
        flipper.done.set()
        flipper.join()
        sys.setswitchinterval(switch)
    assert seen["OUTSIDE"] == 0, seen
    assert seen["inside"] > 0, seen  # the file was read while sub was the real directory


def test_without_dir_fd_the_resolved_path_is_opened(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where ``os.open`` takes no ``dir_fd`` (Windows), the same checks hold, by path."""
    monkeypatch.setattr(_paths, "_BENEATH", False)
    assert load("sub/nested.png", tree).data == (tree / "allowed/sub/nested.png").read_bytes()
    with pytest.raises(ImageRefused, match="not a regular file"):
        load("fifo.png", tree)


def test_a_refusal_repeats_at_most_100_characters_of_a_name() -> None:
    assert _paths.shown("chart.png") == "'chart.png'"
    assert _paths.shown("a" * 200_000) == f"'{'a' * 100}'... (200,000 characters)"
    assert _paths.shown("x" * 101, quoted=False) == f"{'x' * 100}... (101 characters)"
