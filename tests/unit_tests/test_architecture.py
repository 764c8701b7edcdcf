"""The house plan holds: wings as folders, imports pointing one way, no circle.

Every import of every module is read from its source (``ast``), type-only and function-level
imports included, so an import that only runs later, or only for mypy, still counts.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import langchain_afarensis_vision

PACKAGE = Path(langchain_afarensis_vision.__file__).parent
NAME = "langchain_afarensis_vision"
# Low to high: a module imports its own wing and lower ranks only (cli -> ... -> _api).
RANKS: dict[str, int] = {
    "_api": 0,
    "_version": 0,
    "errors": 1,
    "_sources": 2,
    "_progress": 2,
    "images": 3,
    "chat_models": 4,
    "rate_limiters": 4,
    "tools": 5,
    "document_loaders": 5,
    "middleware": 5,
    "corpus": 5,
    "documents": 6,
    "cli": 7,
    "ray": 6,
}
BESIDE = {("chat_models", "rate_limiters")}  # the model takes a limiter; same rank
CLI_MAY_USE = {"server"}  # --local, demo and serve start the local server
SERVER_MAY_USE = {"server", "_api", "_sources", "errors", "_version"}
PUBLIC_PATHS = [
    "chat_models",
    "tools",
    "document_loaders",
    "middleware",
    "images",
    "errors",
    "corpus",
    "documents",
    "server",
    "server.app",
    "server.engine",
    "server.faults",
    "server.limits",
    "server.settings",
    "ray",
    "rate_limiters",
    "cli",
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    where = PACKAGE.parent / dotted.replace(".", "/")
    return where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()


def imports_of(path: Path) -> set[str]:
    """The package's modules that ``path`` imports, anywhere in it."""
    this = _module_name(path)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith(NAME)}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = this if path.name == "__init__.py" else this.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}".rstrip(".")
            if not base.startswith(NAME):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if _is_module(sub) else base)
    found.discard(this)
    return found


GRAPH = {_module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def _wing(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_import_circle() -> None:
    """Depth-first search over every import; a back edge is a circle, reported as a path."""
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(GRAPH.get(module, ())):
            if state.get(target) == 1:
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert circles == []


def test_the_search_finds_a_circle() -> None:
    saved = dict(GRAPH)
    try:
        GRAPH[f"{NAME}.errors"] = {f"{NAME}.images"}
        with pytest.raises(AssertionError):
            test_no_import_circle()
    finally:
        GRAPH.clear()
        GRAPH.update(saved)


def test_imports_point_one_way() -> None:
    wrong = []
    for module, targets in GRAPH.items():
        wing = _wing(module)
        for target in targets:
            other = _wing(target)
            if wing == "__init__" or other == wing:
                continue
            if wing == "server":
                ok = other in SERVER_MAY_USE
            else:
                ok = (wing == "cli" and other in CLI_MAY_USE) or (
                    other in RANKS and (RANKS[other] < RANKS[wing] or (wing, other) in BESIDE)
                )
            if not ok:
                wrong.append(f"{module} -> {target}")
    assert sorted(wrong) == []


def test_every_wing_has_a_rank() -> None:
    wings = {_wing(module) for module in GRAPH} - {"__init__", "server"}
    assert wings == set(RANKS)


def test_top_level_is_small_and_unprefixed() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 10, top
    assert [n for n in top if n.startswith(("_cli_", "_corpus_", "_image_"))] == []


def test_no_module_over_400_lines() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}


@pytest.mark.parametrize("path", PUBLIC_PATHS)
def test_public_paths_import(path: str) -> None:
    importlib.import_module(f"{NAME}.{path}")


def test_public_names_keep_their_homes() -> None:
    from langchain_afarensis_vision.chat_models import ChatAfarensis
    from langchain_afarensis_vision.cli import main
    from langchain_afarensis_vision.corpus import CorpusSummary, describe_images
    from langchain_afarensis_vision.document_loaders import (
        AfarensisImageLoader,
        NoImagesFoundWarning,
        iter_image_sources,
    )
    from langchain_afarensis_vision.images import PreparedImage, prepare_image
    from langchain_afarensis_vision.middleware import ImageBudgetEdit, apply_image_budget
    from langchain_afarensis_vision.rate_limiters import AfarensisRateLimiter
    from langchain_afarensis_vision.tools import AfarensisDescribeImageTool

    top = langchain_afarensis_vision
    assert top.ChatAfarensis is ChatAfarensis
    assert top.describe_images is describe_images
    assert top.CorpusSummary is CorpusSummary
    assert top.AfarensisImageLoader is AfarensisImageLoader
    assert top.NoImagesFoundWarning is NoImagesFoundWarning
    assert top.PreparedImage is PreparedImage
    assert top.prepare_image is prepare_image
    assert top.ImageBudgetEdit is ImageBudgetEdit
    assert top.apply_image_budget is apply_image_budget
    assert top.AfarensisRateLimiter is AfarensisRateLimiter
    assert top.AfarensisDescribeImageTool is AfarensisDescribeImageTool
    assert callable(main)
    assert callable(iter_image_sources)
