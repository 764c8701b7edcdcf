"""describe_dataset on Ray (local mode, two CPUs) against the local server: rows kept, one
budget for four request actors, failures as rows, the corpus job's answers, resume, no key
anywhere Ray writes or shows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")
cloudpickle = pytest.importorskip("ray.cloudpickle")

from langchain_afarensis_vision import (  # noqa: E402
    AfarensisDescribeImageTool,
    AfarensisImageLoader,
    ChatAfarensis,
    describe_images,
)
from langchain_afarensis_vision.images import FACTS, prepare_image  # noqa: E402
from langchain_afarensis_vision.ray import RateBudget, describe_dataset  # noqa: E402
from langchain_afarensis_vision.server import Faults, LocalAfarensisServer  # noqa: E402
from tests._cli_support import run_cli  # noqa: E402
from tests.integration_tests.conftest import jsonl, numbered_png  # noqa: E402

pytestmark = [
    pytest.mark.enable_socket,
    pytest.mark.allow_hosts(["127.0.0.1"]),
    # Ray's own deprecations, raised inside Ray about Ray's settings:
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context"),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One local Ray for the module (starting it takes seconds); its session folder."""
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        _temp_dir=str(tmp_path_factory.mktemp("ray")),
        configure_logging=False,
        log_to_driver=False,
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield Path(ray._private.worker._global_node.get_session_dir_path())
    ray.shutdown()


def _model(server: LocalAfarensisServer) -> ChatAfarensis:
    return ChatAfarensis(base_url=server.base_url, api_key=server.api_key)


def _folder(root: Path, count: int) -> Path:
    folder = root / "images"
    folder.mkdir()
    for n in range(count):
        (folder / f"img{n:03d}.png").write_bytes(numbered_png(n))
    return folder


def test_rows_are_kept_failures_are_rows_and_answers_match_the_corpus_job(
    cluster: Path, tmp_path: Path
) -> None:
    folder = _folder(tmp_path, 6)
    (folder / "broken.png").write_bytes(numbered_png(0)[:40])
    with LocalAfarensisServer(ocr=False) as server:
        ds = ray.data.read_binary_files(str(folder), include_paths=True)
        gone = ray.data.from_items([{"url": "http://127.0.0.1:9/gone.png"}])
        rows = describe_dataset(ds, llm=_model(server), detail="low", max_tokens=40).take_all()
        [missing] = describe_dataset(gone, llm=_model(server), max_tokens=40).take_all()
        summary = describe_images(
            [folder], out=tmp_path / "out.jsonl", llm=_model(server), detail="low",
            max_tokens=40, workers=0,
        )  # fmt: skip
    assert summary.sent == 6
    by_name = {Path(row["path"]).name: row for row in rows}
    assert by_name["img000.png"]["bytes"] > 0  # "bytes" is the fact: what was sent
    assert sorted(by_name) == sorted(p.name for p in folder.iterdir())  # every row, once
    assert "input_bytes" not in rows[0]  # the image column is dropped by default
    broken = by_name.pop("broken.png")
    assert broken["error"]["type"] == "InvalidImageError"
    assert broken["description"] is None
    lines = {Path(line["source"]).name: line for line in jsonl(tmp_path / "out.jsonl")}
    for field in FACTS:  # a refused image: what its header says, the same on both sides
        assert broken[field] == lines["broken.png"][field], field
    assert broken["source_bytes"] == 40
    for name, row in by_name.items():
        line = lines[name]
        assert row["error"] is None
        for field in ("sha256", "key", "description", *FACTS):
            assert row[field] == line[field], (name, field)
        assert (row["prompt_tokens"], row["completion_tokens"]) == (
            line["prompt_tokens"],
            line["completion_tokens"],
        )
    assert missing["url"] == "http://127.0.0.1:9/gone.png"  # URL columns are kept
    assert missing["error"]["type"] == "BadRequestError"
    assert missing["description"] is None


def test_the_dataset_is_read_once(cluster: Path, tmp_path: Path) -> None:
    reads = tmp_path / "reads.log"

    def counted(row: dict[str, Any]) -> dict[str, Any]:
        with reads.open("a") as log:  # the workers are processes: they count in a file
            log.write("read\n")
        return row

    ds = ray.data.from_items([{"bytes": numbered_png(n)} for n in range(3)]).map(counted)
    with LocalAfarensisServer(ocr=False) as server:
        rows = describe_dataset(ds, llm=_model(server), detail="low", max_tokens=20).take_all()
    assert len(rows) == 3
    assert all(row["error"] is None for row in rows)
    assert reads.read_text().count("read") == 3  # not once more to learn the schema


def test_resume_skips_rows_already_described(cluster: Path, tmp_path: Path) -> None:
    folder = _folder(tmp_path, 8)
    with LocalAfarensisServer(ocr=False) as server:
        first = ray.data.read_binary_files(sorted(str(p) for p in folder.iterdir())[:5])
        describe_dataset(first, llm=_model(server), max_tokens=30).write_parquet(
            str(tmp_path / "out")
        )
        everything = ray.data.read_binary_files(str(folder), include_paths=True)
        previous = ray.data.read_parquet(str(tmp_path / "out"))
        rest = describe_dataset(everything, llm=_model(server), max_tokens=30, done=previous)
        rest.write_parquet(str(tmp_path / "out"))
        requests = server.rate_limits()  # no limits: nothing to count; the rows tell
    assert requests is not None
    rows = ray.data.read_parquet(str(tmp_path / "out")).take_all()
    assert len(rows) == 8
    assert len({row["key"] for row in rows}) == 8
    assert all(row["error"] is None for row in rows)


def test_four_actors_share_one_budget_within_the_limit(cluster: Path, tmp_path: Path) -> None:
    """A run costing about 1.5 minutes of the token limit: every row, 429s at most 1%."""
    count = 60
    folder = _folder(tmp_path, count)
    # Each request: 124 prompt tokens (85 for the image at low, the question and its framing)
    # + 60 max_tokens = 184; 7,600 a minute holds 41 of them, the 60 images 1.45 minutes' worth.
    tpm = 7_600
    with LocalAfarensisServer(ocr=False, tokens_per_minute=tpm) as server:
        budget = RateBudget()  # the limits are learned from the headers
        ds = ray.data.read_binary_files(str(folder), override_num_blocks=20)
        out = describe_dataset(
            ds, llm=_model(server), detail="low", max_tokens=60, budget=budget, actors=4,
            in_flight=8, batch_size=4,
        )  # fmt: skip
        rows = out.take_all()
        stats = budget.stats()
    assert len(rows) == count
    assert all(row["error"] is None and row["description"] for row in rows)
    assert stats["limit_tokens"] == tpm
    assert stats["rate_limited"] <= count // 100
    # A pool of four request actors, one budget: Ray hands the blocks out, so at least two of
    # them (usually all four) have sent requests through it.
    assert 2 <= stats["clients"] <= 4
    assert stats["exchanges"] < stats["asks"]  # asks go to the actor in batches


def test_the_key_is_nowhere_ray_writes_or_shows(cluster: Path, tmp_path: Path) -> None:
    folder = _folder(tmp_path, 2)
    with LocalAfarensisServer(ocr=False) as server:
        ds = ray.data.read_binary_files(str(folder))
        out = describe_dataset(ds, llm=_model(server), max_tokens=20)
        rows = out.take_all()
        key = server.api_key
    assert all(row["error"] is None for row in rows)
    shown = repr(out) + str(out.stats()) + str(out._logical_plan.dag)
    assert key not in shown
    # What Ray pickles into the tasks and actors: each operator's function arguments.
    operator: Any = out._logical_plan.dag
    arguments: list[Any] = []
    while operator is not None:
        for name in ("fn_args", "fn_kwargs", "fn_constructor_args", "fn_constructor_kwargs"):
            arguments.append(getattr(operator, name, None))
        operator = operator.input_dependencies[0] if operator.input_dependencies else None
    assert any(arguments)
    assert key.encode() not in cloudpickle.dumps(arguments)
    logs = [path for path in cluster.rglob("*") if path.is_file()]
    assert any(path.suffix in {".log", ".out", ".err"} for path in logs)
    for log in logs:
        assert key.encode() not in log.read_bytes(), log


def test_injected_429s_reach_the_shared_budget_and_lose_no_row(
    cluster: Path, tmp_path: Path
) -> None:
    """About one answer in ten a 429 (Retry-After 1 s): the one budget sees them (and pauses
    every actor: the limiter's own unit tests), and every row comes back described."""
    folder = _folder(tmp_path, 30)
    faults = Faults(rate_limit_rate=0.1, retry_after=1.0)
    with LocalAfarensisServer(ocr=False, faults=faults, seed=5) as server:
        budget = RateBudget()
        llm = ChatAfarensis(base_url=server.base_url, api_key=server.api_key, max_retries=6)
        ds = ray.data.read_binary_files(str(folder), override_num_blocks=6)
        out = describe_dataset(ds, llm=llm, detail="low", max_tokens=20, budget=budget)
        rows = out.take_all()
        stats = budget.stats()
    assert len(rows) == 30
    assert all(row["error"] is None and row["description"] for row in rows)
    assert stats["rate_limited"] >= 1  # the actors' 429s reached the one budget


def test_every_surface_reports_an_image_with_the_same_facts(cluster: Path, tmp_path: Path) -> None:
    """The tool's artifact, the loader's metadata, ``--json``, a corpus line and a Ray row."""
    folder = tmp_path / "one"
    folder.mkdir()
    photo = folder / "photo.png"
    photo.write_bytes(numbered_png(7, size=(1600, 1200)))  # resized at low: changed, 512 x 384
    call = {"type": "tool_call", "name": "describe_image", "id": "call_1"}
    with LocalAfarensisServer(ocr=False) as server:
        tool = AfarensisDescribeImageTool(
            llm=_model(server), allowed_dirs=[folder], response_format="content_and_artifact"
        )
        artifact = tool.invoke({**call, "args": {"image": "photo.png", "detail": "low"}}).artifact
        [document] = AfarensisImageLoader(str(photo), llm=_model(server), detail="low").load()
        out = tmp_path / "out.jsonl"
        describe_images([folder], out=out, llm=_model(server), detail="low", workers=0)
        [line] = jsonl(out)
        ds = ray.data.read_binary_files(str(folder))
        [row] = describe_dataset(ds, llm=_model(server), detail="low").take_all()
    cli = run_cli("tokens", "--json", "--detail", "low", str(photo))
    [record] = json.loads(cli.out)
    expected = prepare_image(photo, "low").facts()
    assert expected["changed"]
    assert expected["width"] == 512
    surfaces = {"tool": artifact, "loader": document.metadata, "cli": record}
    surfaces |= {"corpus": line, "ray": row}
    for name, surface in surfaces.items():
        assert {field: surface[field] for field in FACTS} == expected, name
