"""``documents._index``: the blocking ``add`` beside the async ``aadd``."""

from __future__ import annotations

from pathlib import Path

import pytest

from langchain_afarensis_vision import ChatAfarensis
from langchain_afarensis_vision.documents import PageIndex


async def test_add_inside_a_running_loop_says_to_await_aadd(tmp_path: Path) -> None:
    model = ChatAfarensis(api_key="sk-test", base_url="http://127.0.0.1:9/v1")
    with PageIndex(tmp_path / "index", llm=model) as index:
        with pytest.raises(RuntimeError, match=r"already running here .*: use `await aadd\(...\)`"):
            index.add([tmp_path])
        assert len(index) == 0
