"""The CLI's ``--json`` records of images refused before sending: what is known is filled."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from langchain_afarensis_vision.cli._records import prepared_record


def test_a_refused_animation_records_its_format_size_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "blink.gif"
    frames = [Image.new("L", (30, 20), shade) for shade in (0, 255)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    prepared, record = prepared_record(str(path), "auto", first_frame=False)
    assert prepared is None
    assert record["error"]["code"] == "animated_gif_not_supported"
    facts = ("format", "source_width", "source_height", "source_bytes")
    assert [record[k] for k in facts] == ["GIF", 30, 20, path.stat().st_size]
    sent = ("mime_type", "width", "height", "bytes", "changed", "image_tokens")
    assert [record[k] for k in sent] == [None] * 6  # nothing is sent


def test_unknown_data_records_only_its_length_and_a_missing_file_nothing(tmp_path: Path) -> None:
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    _, record = prepared_record(str(notes), "low", first_frame=False)
    assert record["error"]["code"] == "invalid_image_format"
    assert (record["format"], record["source_width"], record["source_bytes"]) == (None, None, 12)
    _, missing = prepared_record(str(tmp_path / "gone.png"), "low", first_frame=False)
    assert missing["error"]["type"] == "file_error"
    assert missing["source_bytes"] is None
