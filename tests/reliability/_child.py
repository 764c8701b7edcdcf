"""Run code in a fresh Python process (its own peak memory), and read the JSON it prints last."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_child(code: str, args: list[str], timeout: float) -> dict[str, object]:
    """``python -c code *args`` from the repository's root; the JSON object of its last line.

    The child must exit 0 (else the test fails with its stderr's end).
    """
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
