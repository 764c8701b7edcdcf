"""Run every benchmark in turn and print a summary table of the figures against their goals.

Run: ``.venv/bin/python benchmarks/run_all.py`` (``make bench``). Needs the ``bench`` extra
(langchain-openai for the comparisons). Takes a few minutes; not part of ``make test``.

Each script runs in its own process and prints its full results, which are echoed here; the
benchmarks end with ``RESULT {json}`` lines (see ``_common.result``), and the figures of
``bench_server.py`` are read from its printed lines. Every
client benchmark runs its server in a separate process (see ``_common``). The machine is small
and may be shared: the load average is printed before and after, and each script interleaves
its sides and reports medians.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from _common import load_average, machine

HERE = Path(__file__).resolve().parent

# (script, arguments): the defaults of each, sized so that the whole run takes a few minutes.
SCRIPTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("bench_text_call.py", ()),
    ("bench_abatch.py", ()),
    ("bench_camera_photo.py", ()),
    ("bench_conversation.py", ()),
    ("bench_image_budget.py", ()),
    ("bench_loader_memory.py", ()),
    ("bench_prepare_image.py", ("7",)),
    ("bench_server.py", ("3", "16")),
    ("bench_documents.py", ()),
)


@dataclass
class Row:
    figure: str
    ours: str
    other: str
    ratio: str
    goal: str
    met: str


def number(value: float, unit: str) -> str:
    if unit == "B":
        return f"{value:,.0f} B"
    if unit in ("req/s", "MB"):
        return f"{value:,.0f} {unit}"
    if unit == "ms":
        return f"{value:.3f} ms" if value < 10 else f"{value:.1f} ms"
    return f"{value:g}{(' ' + unit) if unit else ''}"


def result_rows(output: str) -> list[Row]:
    rows = []
    for line in output.splitlines():
        if line.startswith("RESULT "):
            record = json.loads(line[len("RESULT ") :])
            unit = record["unit"]
            rows.append(
                Row(
                    record["figure"],
                    number(record["ours"], unit),
                    number(record["other"], unit),
                    f"{record['ratio']:.3f}x" if unit == "B" else f"{record['ratio']:.2f}x",
                    record["goal"],
                    "yes" if record["met"] else "NO",
                )
            )
    return rows


def server_rows(output: str) -> list[Row]:
    """bench_server's figures: reported, with no goal of their own."""
    rows = []
    if latency := re.search(r"median ([\d.]+) ms, p95 ([\d.]+) ms", output):
        rows.append(
            Row("server latency (1 client)", f"{latency[1]} ms", "-", "-", "(reported)", "-")
        )
    if rate := re.search(r"\(([\d]+) concurrent async clients.*?: (\d+) requests/s", output):
        rows.append(
            Row(
                f"server throughput ({rate[1]} clients)",
                f"{rate[2]} req/s",
                "-",
                "-",
                "(reported)",
                "-",
            )
        )
    return rows


def run(script: str, args: tuple[str, ...]) -> tuple[str, float, int]:
    began = time.perf_counter()
    print(f"\n=== {script} {' '.join(args)}".rstrip(), flush=True)
    process = subprocess.run(
        [sys.executable, str(HERE / script), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    output = "\n".join(
        line for line in process.stdout.splitlines() if not line.startswith(("RESULT ", "SHAPED "))
    )
    print(output, flush=True)
    if process.returncode:
        print(process.stderr, file=sys.stderr, flush=True)
    return process.stdout, time.perf_counter() - began, process.returncode


def shaped_links(output: str) -> str | None:
    """bench_camera_photo's measured shaped-link table (or why it was skipped), for the summary."""
    for line in output.splitlines():
        if line.startswith("SHAPED "):
            record = json.loads(line[len("SHAPED ") :])
            if "skipped" in record:
                return f"12 MP photo on shaped links: SKIPPED ({record['skipped']})"
            lines = [
                "12 MP photo on shaped links (measured, medians per call):",
                "| link | ours | ChatOpenAI | ours / ChatOpenAI |",
                "|---|---|---|---|",
            ]
            for row in record["rows"]:
                ours, other = row["ours_ms"], row["openai_ms"]
                lines.append(
                    f"| {row['link']} | {ours:.0f} ms | {other:.0f} ms | {ours / other:.2f}x |"
                )
            return "\n".join([*lines, record["crossover"]])
    return None


def table(rows: list[Row]) -> str:
    header = Row("figure", "ours", "other", "ratio", "goal", "met?")
    widths = [
        max(len(getattr(row, field)) for row in [header, *rows])
        for field in ("figure", "ours", "other", "ratio", "goal", "met")
    ]

    def line(row: Row) -> str:
        cells = (row.figure, row.ours, row.other, row.ratio, row.goal, row.met)
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def main() -> None:
    began = time.perf_counter()
    print(machine())
    print(f"load average before: {load_average()}")
    rows: list[Row] = []
    failed = []
    links = None
    for script, args in SCRIPTS:
        output, seconds, code = run(script, args)
        print(f"--- {script}: {seconds:.1f} s" + (f", FAILED (exit {code})" if code else ""))
        if code:
            failed.append(script)
        links = links or shaped_links(output)
        if script == "bench_server.py":
            rows += server_rows(output)
        else:
            rows += result_rows(output)
    print(f"\n=== summary ({time.perf_counter() - began:.0f} s in all)")
    print(machine())
    print(f"load average after: {load_average()}")
    print("ours = ChatAfarensis / this package; other = the comparison named in the figure")
    print(table(rows))
    if links:
        print()
        print(links)
    if failed:
        print(f"failed: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
