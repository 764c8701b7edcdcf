"""Running the installed ``afarensis-vision`` entry point, with or without the ``server`` extra.

:func:`plain_install` builds a venv (no pip, a second or less) in which the package and its
core dependencies are importable but the ``server`` extra's packages are really absent: its
site-packages reaches a folder of links to every entry of this venv's site-packages except
starlette, uvicorn and jsonschema (and their metadata), and its ``bin/afarensis-vision`` is
this venv's console script with the new interpreter in its ``#!`` line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
ENTRY_POINT = BIN / "afarensis-vision"
SERVER_EXTRA = ("starlette", "uvicorn", "jsonschema")


@dataclass(frozen=True)
class Run:
    """A finished CLI run."""

    code: int
    out: str
    err: str


def run_cli(
    *args: str,
    entry: Path = ENTRY_POINT,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Run:
    """Run the entry point with ``args`` (no AFARENSIS_* variables unless in ``env``)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AFARENSIS_")}
    done = subprocess.run(
        [str(entry), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**base, "COLUMNS": "200", **(env or {})},
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def one_error_line(run: Run, code: int) -> str:
    """The one line a run wrote on stderr, having exited with ``code`` (and no traceback)."""
    assert run.code == code, run
    assert "Traceback" not in run.err, run.err
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    return lines[0]


def json_records(run: Run) -> list[dict[str, Any]]:
    """The records a ``--json`` run printed."""
    records: list[dict[str, Any]] = json.loads(run.out)
    return records


def plain_install(root: Path) -> Path:
    """A venv under ``root`` with the package but not its ``server`` extra; its entry point."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root / "venv")
    ours = Path(sysconfig.get_paths()["purelib"])
    view = root / "site-packages"
    view.mkdir()
    for entry in ours.iterdir():
        if not entry.name.lower().startswith(SERVER_EXTRA):
            (view / entry.name).symlink_to(entry)
    python = root / "venv" / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # A .pth line starting with "import" runs: addsitedir also reads the view's own .pth files
    # (the editable install's path to this checkout).
    (Path(purelib) / "view.pth").write_text(f"import site; site.addsitedir({str(view)!r})\n")
    script = ENTRY_POINT.read_text().splitlines()
    assert script[0].startswith("#!")
    entry = root / "venv" / "bin" / "afarensis-vision"
    entry.write_text("\n".join([f"#!{python}", *script[1:]]) + "\n")
    entry.chmod(0o755)
    return entry
