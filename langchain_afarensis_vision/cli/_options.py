"""The CLI's argument types and the options every run command shares.

``caption`` and ``index`` both send many requests: :func:`run_options` gives them the same
``--concurrency``, ``--rpm``, ``--tpm``, ``--budget-tokens``, ``--dry-run`` and ``--local``,
so a script that drives one drives the other alike.
"""

from __future__ import annotations

import argparse
import math


def integer(text: str, low: int, high: float, wanted: str) -> int:
    """``text`` as an integer from ``low`` to ``high``, else argparse's error saying ``wanted``."""
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be {wanted}; got {text!r}")
    return value


def positive(text: str) -> int:
    """``text`` as an integer of 1 or more."""
    return integer(text, 1, math.inf, "a positive integer")


def run_options(command: argparse.ArgumentParser, *, each: str, budget: str, dry_run: str) -> None:
    """The options of a command that sends many requests (``each``: what one request is about).

    ``budget`` and ``dry_run`` are the help of ``--budget-tokens`` and ``--dry-run``.
    """
    command.add_argument(
        "--concurrency", type=positive, default=8, help=f"{each} at once at most [8]"
    )
    command.add_argument("--rpm", type=positive, default=None, help="cap requests per minute")
    command.add_argument("--tpm", type=positive, default=None, help="cap tokens per minute")
    command.add_argument("--budget-tokens", type=positive, default=None, help=budget)
    command.add_argument("--dry-run", action="store_true", help=dry_run)
    local_option(command)


def local_option(command: argparse.ArgumentParser) -> None:
    """``--local``: the embedded local server instead of the API."""
    command.add_argument(
        "--local", action="store_true", help="use the embedded local server (offline answers)"
    )
