"""Every code block in README.md runs, and says what the README says it says.

The README is read as a user would read it: its ``python`` blocks run in order, as one session,
in a fresh folder, in a subprocess of this interpreter (the first block starts the local server
the others use; no key, no network). Its ``bash`` blocks run there next, line by line, with the
venv's ``afarensis-vision`` on the PATH; a ``make`` line is checked with ``make -n`` (it is the
command running this test, or one CI runs). A ``text`` block right after a code block is that
block's output: its lines must appear in the output in order, ``...`` standing for anything.
Any other ``text`` block is a tree the code must match: the exception tree, the house plan.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_afarensis_vision import errors

pytestmark = pytest.mark.enable_socket  # the session's local server listens on 127.0.0.1

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAX_LINES = 300
FIRST_CALL_BY = 60  # the offline first call is in the first 60 lines
SESSION_SECONDS = 600
MARK = "~~~ block {n} ~~~"


@dataclasses.dataclass
class Block:
    """A fenced code block: its language, first line (1-based) and text."""

    lang: str
    line: int
    code: str
    output_of: Block | None = None  # for a text block right after a code block


def blocks(text: str) -> list[Block]:
    """The README's fenced blocks, each ``text`` block tied to a code block just before it."""
    found: list[Block] = []
    lines = text.splitlines()
    i, after_code = 0, False
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if fence is None:
            after_code = after_code and not lines[i].strip()
            i += 1
            continue
        end = lines.index("```", i + 1)
        block = Block(fence.group(1), i + 1, "\n".join(lines[i + 1 : end]) + "\n")
        if block.lang == "text" and after_code:
            block.output_of = found[-1]
        found.append(block)
        after_code = block.lang != "text"
        i = end + 1
    return found


README_TEXT = README.read_text(encoding="utf-8")
BLOCKS = blocks(README_TEXT)
CODE = [b for b in BLOCKS if b.lang in ("python", "bash")]


def matches(expected: str, output: str) -> str | None:
    """None when every line of ``expected`` appears in ``output`` in order, else the one missing.

    ``...`` in a line stands for anything on that line; a line of just ``...`` for any lines.
    """
    at = 0
    for line in expected.splitlines():
        if line.strip() in ("", "..."):
            continue
        pieces = [re.escape(piece) for piece in line.split("...")]
        found = re.compile(".*?".join(pieces)).search(output, at)
        if found is None:
            return line
        at = found.end()
    return None


# -- the shape of the README -------------------------------------------------------------------


def test_readme_is_short_with_contents_and_the_offline_call_first() -> None:
    lines = README_TEXT.splitlines()
    assert len(lines) <= MAX_LINES
    headings = [line[3:] for line in lines if line.startswith("## ")]
    contents = next(line for line in lines[:30] if line.startswith("**Contents:**"))
    contents_block = README_TEXT[README_TEXT.index(contents) :].split("\n\n")[0]
    for heading in headings:
        anchor = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        assert f"(#{anchor})" in contents_block, f"'{heading}' is not in the contents"
    first = CODE[0]
    assert first.lang == "python"
    assert first.line + first.code.count("\n") <= FIRST_CALL_BY
    assert "LocalAfarensisServer()" in first.code  # offline: the embedded server, no key
    assert "print(answer.content)" in first.code


def test_every_block_is_run_or_checked() -> None:
    for block in BLOCKS:
        assert block.lang in ("python", "bash", "text"), f"line {block.line}: ```{block.lang}"
    trees = [b for b in BLOCKS if b.lang == "text" and b.output_of is None]
    assert [b.code.split()[0] for b in trees] == ["AfarensisError", "langchain_afarensis_vision/"]


def test_the_exception_tree_is_the_real_one() -> None:
    tree = next(b for b in BLOCKS if b.output_of is None and b.code.startswith("AfarensisError"))
    shown: dict[str, str] = {}  # class -> its parent as drawn
    parents: list[tuple[int, str]] = []
    for line in tree.code.splitlines():
        name_at = re.search(r"[A-Z]\w+", line)
        assert name_at is not None
        depth, name = name_at.start(), name_at.group()
        parents = [(d, n) for d, n in parents if d < depth]
        if parents:
            shown[name] = parents[-1][1]
        parents.append((depth, name))
    public = {name for name in errors.__all__ if name != "APIResponseInfo"}
    assert set(shown) | {"AfarensisError"} == public
    for name, parent in shown.items():
        assert getattr(errors, name).__bases__[0] is getattr(errors, parent), name


def test_the_house_plan_names_every_room() -> None:
    """Each wing's line names its rooms (the server's and Ray's are theirs to list)."""
    tree = next(b for b in BLOCKS if b.output_of is None and b.code.startswith("langchain_"))
    package = ROOT / "langchain_afarensis_vision"
    named: dict[str, set[str]] = {"": set()}
    wing = ""
    for line in tree.code.splitlines()[1:]:
        if found := re.match(r"^  (\w+)/", line):
            wing = found.group(1)
            named.setdefault(wing, set())
        elif not line.startswith("    "):
            wing = ""
        named[wing] |= set(re.findall(r"\b(\w+\.py)\b", line))
        named[""] |= {f"{w}/" for w in re.findall(r"(?:^|\s)(\w+)/", line)}
    assert named[""] == {p.name for p in package.glob("*.py")} | {
        f"{p.name}/" for p in package.iterdir() if (p / "__init__.py").is_file()
    }
    for wing, rooms in named.items():
        if wing and wing not in ("server", "ray"):
            assert rooms == {p.name for p in (package / wing).glob("*.py")} - {"__init__.py"}, wing


# -- running it --------------------------------------------------------------------------------


def _session(blocks_: list[Block]) -> str:
    """One script: each python block after a line that marks where its output starts."""
    parts = ["import sys\nsys.stdout.reconfigure(line_buffering=True)\n"]
    for n, block in enumerate(blocks_):
        parts.append(f"print({MARK.format(n=n)!r}, flush=True)\n")
        parts.append(block.code)
    parts.append("if 'server' in globals():\n    server.stop()\n")
    return "\n".join(parts)


def _split(output: str, count: int) -> list[str]:
    pieces = re.split(r"^~~~ block (\d+) ~~~$", output, flags=re.MULTILINE)
    found = {int(n): text for n, text in zip(pieces[1::2], pieces[2::2], strict=True)}
    return [found.get(n, "") for n in range(count)]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFARENSIS_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONWARNINGS"] = "error::DeprecationWarning:langchain_afarensis_vision"
    return env


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[int, str]:
    """Each code block's output by its line, from one run of the README in an empty folder."""
    folder = tmp_path_factory.mktemp("readme")
    python = [b for b in CODE if b.lang == "python"]
    # As typed into an interpreter or a notebook (``-c``: no main file for the corpus job's
    # worker processes to import again; a script needs the __main__ guard the README names).
    done = subprocess.run(
        [sys.executable, "-c", _session(python)],
        cwd=folder,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=SESSION_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    outputs = dict(zip([b.line for b in python], _split(done.stdout, len(python)), strict=True))
    for block in (b for b in CODE if b.lang == "bash"):
        outputs[block.line] = _run_bash(block, folder)
    return outputs


def _run_bash(block: Block, folder: Path) -> str:
    said = []
    for line in block.code.splitlines():
        command = line.split("  #")[0].strip()
        if not command:
            continue
        if command.startswith("make "):
            args, cwd = ["make", "-n", *command.split()[1:]], ROOT
        else:
            args, cwd = ["bash", "-c", command], folder
        done = subprocess.run(
            args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        said.append(done.stdout + done.stderr)
    return "\n".join(said)


@pytest.mark.parametrize("block", CODE, ids=[f"line-{b.line}" for b in CODE])
def test_block_runs_and_prints_what_the_readme_shows(block: Block, ran: dict[int, str]) -> None:
    output = ran[block.line]
    for shown in (b for b in BLOCKS if b.output_of is block):
        missing = matches(shown.code, output)
        assert missing is None, f"README line {shown.line}: {missing!r} not in:\n{output}"


def test_matches_is_strict() -> None:
    assert matches("a ... c\n...\nd", "a b c\nx\nd") is None
    assert matches("a ... c", "c b a") == "a ... c"
    assert matches("d\nc", "c d") == "c"  # in order
