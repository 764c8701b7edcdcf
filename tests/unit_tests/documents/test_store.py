"""``documents._store``: the SQLite index: pages published whole, full-text search over them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from langchain_afarensis_vision.documents._store import DATABASE, FileRow, Store


def key(sha256: str) -> str:
    return f"key-{sha256}"


def row(name: str, pages: int = 1) -> FileRow:
    return FileRow(name, "/docs", f"/docs/{name}", 10, 1, f"sha-{name}", pages, None)


def page(number: int, count: int, text: str, sha256: str | None = None) -> tuple[object, ...]:
    digest = sha256 or f"img-{text[:12]}-{number}"
    return (number, count, digest, f"{digest}.png", 768, 993, int(bool(text)), text, None)


def publish(store: Store, name: str, *texts: str) -> None:
    store.stage(name, [page(n, len(texts), text) for n, text in enumerate(texts, 1)])
    store.publish(row(name, len(texts)), key)


def found(store: Store, query: str, k: int = 5) -> list[tuple[str, int]]:
    return [(hit.file, hit.page) for hit in store.search(query, k, key)]


def test_the_best_page_comes_first(tmp_path: Path) -> None:
    store = Store(tmp_path)
    publish(store, "a.pdf", "Intro to the annual report", "Turbine output rose in March")
    publish(store, "b.pdf", "The turbine hall was painted", "Staff and offices")
    assert found(store, "How much did turbine output rise?")[:2] == [("a.pdf", 2), ("b.pdf", 1)]


def test_chinese_and_japanese_text_is_found_by_a_few_characters(tmp_path: Path) -> None:
    store = Store(tmp_path)
    publish(store, "zh.pdf", "本季度数据分析报告显示收入增长", "员工人数")
    publish(store, "ja.pdf", "東京タワーの来場者数は増えた")
    assert found(store, "数据分析")[0] == ("zh.pdf", 1)
    assert found(store, "東京タワー")[0] == ("ja.pdf", 1)
    assert found(store, "员工")[0] == ("zh.pdf", 2)


def test_accents_ocr_invents_do_not_hide_a_page(tmp_path: Path) -> None:
    store = Store(tmp_path)
    publish(store, "scan.pdf", "Résumé of the Kestrél Bay survéy")
    assert found(store, "kestrel bay survey") == [("scan.pdf", 1)]


def test_a_description_adds_what_the_text_layer_lacks(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.stage("c.pdf", [page(1, 1, "Monthly output", sha256="chart")])
    store.publish(row("c.pdf"), key)
    assert found(store, "Lindqvist 4,812") == []
    record = {"key": key("chart"), "sha256": "chart", "description": "Lindqvist array: 4,812 MWh"}
    assert store.add_descriptions([record], key) == 1
    assert found(store, "Lindqvist 4,812") == [("c.pdf", 1)]
    assert store.add_descriptions([record], key) == 0  # described once


def test_a_file_half_written_is_never_seen(tmp_path: Path) -> None:
    store = Store(tmp_path)
    publish(store, "d.pdf", "old text about kestrels")
    store.stage("d.pdf", [page(1, 2, "new text about ospreys")])  # a run killed here
    reader = sqlite3.connect(tmp_path / DATABASE)  # another process, reading meanwhile
    rows = reader.execute("SELECT text FROM live WHERE file = 'd.pdf'").fetchall()
    assert rows == [("old text about kestrels",)]
    assert found(store, "ospreys") == []
    store.discard_unfinished()  # the next run's start
    publish(store, "d.pdf", "new text about ospreys", "second page")
    assert found(store, "ospreys") == [("d.pdf", 1)]
    assert found(store, "kestrels") == []


def test_removing_a_file_removes_its_pages_from_search(tmp_path: Path) -> None:
    store = Store(tmp_path)
    publish(store, "e.pdf", "zebra crossing")
    assert store.remove(["e.pdf", "never.pdf"]) == 1
    assert found(store, "zebra") == []
    assert store.count() == 0
