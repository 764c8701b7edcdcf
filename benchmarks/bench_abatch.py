"""Throughput of ``abatch``: 200 text requests at 32 concurrent, against ChatOpenAI and bare httpx2.

Run: ``.venv/bin/python benchmarks/bench_abatch.py [rounds] [requests] [concurrency]``

One ``LocalAfarensisServer(ocr=False)`` runs in a separate process (see ``_common``), so the
server has its own core and interpreter lock and the client process has the other. All sides
run in one event loop, interleaved round by round (medians reported), each warmed up first, so
each keeps its connection pool between rounds:

* ours:        ``ChatAfarensis(...).abatch(questions, config={"max_concurrency": 32})``;
* ChatOpenAI:  langchain-openai's ``ChatOpenAI(...).abatch(...)``, same config;
* core floor:  a ``BaseChatModel`` whose ``_agenerate`` is one bare httpx2 POST of a prebuilt
  body, ``abatch``-ed the same way: what langchain-core's own async path costs on top of HTTP;
* bare:        one ``httpx2.AsyncClient`` (httpx2's default pool, as ours), an
  ``asyncio.Semaphore(32)`` + ``gather`` of POSTs of a prebuilt JSON body, answers parsed.

Every request is the same short question with ``max_tokens`` 300; every answer is the same.
Client CPU per request (this process's CPU time over the batch) is reported beside the rates:
the server's work is in the other process.
Goals: ours >= 2x ChatOpenAI's requests/s, and >= 0.65x the bare client's.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import httpx2
from _common import MAX_TOKENS, MODEL, Samples, bare_request, machine, result, server_process
from _core_floor import CoreFloor
from langchain_openai import ChatOpenAI

from langchain_afarensis_vision import ChatAfarensis

QUESTION = "What is in a typical holiday photo? Answer briefly."


async def measure(sides: dict[str, Callable[[], Awaitable[object]]], rounds: int) -> Samples:
    """Seconds per batch of each side (wall, CPU), interleaved, rotating who goes first."""
    for run in sides.values():  # warm-up: pools filled, imports and caches done
        await run()
    names = list(sides)
    samples = Samples({name: [] for name in names}, {name: [] for name in names})
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            began, cpu_began = time.perf_counter(), time.process_time()
            await sides[name]()
            samples.cpu[name].append(time.process_time() - cpu_began)
            samples.wall[name].append(time.perf_counter() - began)
    return samples


async def run(base_url: str, api_key: str, requests: int, concurrency: int, rounds: int) -> None:
    questions = [QUESTION] * requests
    config = {"max_concurrency": concurrency}
    ours = ChatAfarensis(base_url=base_url, api_key=api_key, max_tokens=MAX_TOKENS)
    openai = ChatOpenAI(base_url=base_url, api_key=api_key, model=MODEL, max_tokens=MAX_TOKENS)
    url, body, headers = bare_request(base_url, api_key, QUESTION)
    client = httpx2.AsyncClient()
    floor = CoreFloor(async_client=httpx2.AsyncClient(), url=url, body=body, headers=headers)

    async def bare() -> list[str]:
        slots = asyncio.Semaphore(concurrency)

        async def one() -> str:
            async with slots:
                response = await client.post(url, content=body, headers=headers)
                response.raise_for_status()
                return str(response.json()["choices"][0]["message"]["content"])

        return await asyncio.gather(*(one() for _ in range(requests)))

    async def ours_batch() -> list[str]:
        return [m.text for m in await ours.abatch(questions, config=config)]  # type: ignore[arg-type]

    async def floor_batch() -> list[str]:
        return [m.text for m in await floor.abatch(questions, config=config)]  # type: ignore[arg-type]

    async def openai_batch() -> list[str]:
        return [m.text for m in await openai.abatch(questions, config=config)]  # type: ignore[arg-type]

    answers = {
        "ours": set(await ours_batch()),
        "ChatOpenAI": set(await openai_batch()),
        "bare": set(await bare()),
    }
    if len({frozenset(a) for a in answers.values()}) != 1 or len(answers["ours"]) != 1:
        raise SystemExit(f"the sides got different answers: {answers}")
    sides: dict[str, Callable[[], Awaitable[object]]] = {
        "ours": ours_batch,
        "ChatOpenAI": openai_batch,
        "core floor": floor_batch,
        "bare httpx2": bare,
    }
    samples = await measure(sides, rounds)
    await client.aclose()
    assert floor.async_client is not None
    await floor.async_client.aclose()
    await ours.aclose()
    report(samples, requests, concurrency, rounds)


def report(samples: Samples, requests: int, concurrency: int, rounds: int) -> None:
    seconds = samples.wall
    rps = {name: requests / statistics.median(values) for name, values in seconds.items()}
    cpu = {
        name: statistics.median(values) / requests * 1000 for name, values in samples.cpu.items()
    }
    print(
        f"abatch of {requests} text requests at {concurrency} concurrent, max_tokens {MAX_TOKENS},"
        f" {rounds} interleaved rounds, medians:"
    )
    for name, value in rps.items():
        spread = sorted(requests / s for s in seconds[name])
        print(
            f"  {name:11s} {value:6.0f} requests/s ({spread[0]:.0f}-{spread[-1]:.0f})  "
            f"{value / rps['bare httpx2']:5.2f}x bare   client CPU {cpu[name]:.3f} ms a request"
        )
    vs_openai = rps["ours"] / rps["ChatOpenAI"]
    vs_bare = rps["ours"] / rps["bare httpx2"]
    print(f"  ours / ChatOpenAI = {vs_openai:.2f}x (goal >= 2x)")
    print(f"  ours / bare httpx2 = {vs_bare:.2f}x (goal >= 0.65x)")
    print(
        f"  core floor / bare httpx2 = {rps['core floor'] / rps['bare httpx2']:.2f}x "
        f"(langchain-core's async path); ours / core floor = "
        f"{rps['ours'] / rps['core floor']:.2f}x"
    )
    result(
        "abatch 200 at 32 (vs ChatOpenAI)",
        rps["ours"],
        rps["ChatOpenAI"],
        "req/s",
        ">= 2x",
        vs_openai >= 2,
    )
    result(
        "abatch 200 at 32 (vs bare httpx2)",
        rps["ours"],
        rps["bare httpx2"],
        "req/s",
        ">= 0.65x",
        vs_bare >= 0.65,
    )


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    requests = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    print(machine())
    with server_process() as server:
        asyncio.run(run(server.base_url, server.api_key, requests, concurrency, rounds))


if __name__ == "__main__":
    main()
