"""Per-call time of a text request: ChatAfarensis against ChatOpenAI and against the floors.

Run: ``.venv/bin/python benchmarks/bench_text_call.py [rounds] [calls]``

One ``LocalAfarensisServer(ocr=False)`` runs in a separate process (see ``_common``); every side
sends the same question to it, with ``max_tokens`` 300, and gets the same answer (same text,
same 86 completion tokens). Each side is warmed up and reuses one connection. Sides, timed
interleaved (``calls`` back-to-back calls per sample, ``rounds`` samples, medians):

* ours:        ``ChatAfarensis(...).invoke(question)``;
* ChatOpenAI:  langchain-openai's ``ChatOpenAI(base_url=server, model=..., max_tokens=300)``
  (it sends ``max_completion_tokens``, which the server takes as the same budget);
* core floor:  a ``BaseChatModel`` whose ``_generate`` is one bare httpx2 POST of a prebuilt
  body, answer text only: what langchain-core's own ``invoke`` path costs on top of HTTP;
* bare POST:   one reused ``httpx2.Client`` posting a prebuilt JSON body and parsing the JSON
  answer: the floor for any Python client.

Goals: ours <= 0.7x ChatOpenAI's time, and <= 1.5x the bare POST's.
"""

from __future__ import annotations

import sys

import httpx2
from _common import (
    MAX_TOKENS,
    MODEL,
    bare_request,
    interleaved,
    machine,
    median,
    result,
    server_process,
)
from _core_floor import CoreFloor
from langchain_openai import ChatOpenAI

from langchain_afarensis_vision import ChatAfarensis

QUESTION = "What is in a typical holiday photo? Answer briefly."


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 21
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    print(machine())
    with server_process() as server:
        url, body, headers = bare_request(server.base_url, server.api_key, QUESTION)
        ours = ChatAfarensis(
            base_url=server.base_url, api_key=server.api_key, max_tokens=MAX_TOKENS
        )
        openai = ChatOpenAI(
            base_url=server.base_url, api_key=server.api_key, model=MODEL, max_tokens=MAX_TOKENS
        )
        client = httpx2.Client()
        floor = CoreFloor(client=client, url=url, body=body, headers=headers)

        def bare() -> object:
            response = client.post(url, content=body, headers=headers)
            response.raise_for_status()
            return response.json()

        answers = {
            "ours": ours.invoke(QUESTION).text,
            "ChatOpenAI": openai.invoke(QUESTION).text,
            "bare": bare()["choices"][0]["message"]["content"],  # type: ignore[index]
        }
        if len(set(answers.values())) != 1:
            raise SystemExit(f"the sides got different answers: {answers}")
        samples = interleaved(
            {
                "ours": lambda: ours.invoke(QUESTION),
                "ChatOpenAI": lambda: openai.invoke(QUESTION),
                "core floor": lambda: floor.invoke(QUESTION),
                "bare POST": bare,
            },
            rounds,
            calls,
        )
        client.close()
        ours.close()
    ms = {name: median(values) * 1000 for name, values in samples.wall.items()}
    cpu = {name: median(values) * 1000 for name, values in samples.cpu.items()}
    print(
        f"text request ({len(QUESTION)} chars, max_tokens {MAX_TOKENS}, "
        f"{len(answers['ours'])}-char answer), {rounds} interleaved rounds x {calls} calls, "
        "medians per call (wall clock; client CPU, the server's excluded):"
    )
    for name, value in ms.items():
        print(
            f"  {name:11s} {value:7.3f} ms  {value / ms['bare POST']:5.2f}x bare POST   "
            f"client CPU {cpu[name]:6.3f} ms  {cpu[name] / cpu['bare POST']:5.2f}x"
        )
    vs_openai = ms["ours"] / ms["ChatOpenAI"]
    vs_bare = ms["ours"] / ms["bare POST"]
    print(f"  ours / ChatOpenAI = {vs_openai:.2f}x (goal <= 0.7x)")
    print(f"  ours / bare POST  = {vs_bare:.2f}x (goal <= 1.5x)")
    print(f"  core floor / bare POST = {ms['core floor'] / ms['bare POST']:.2f}x (langchain-core)")
    print(
        f"  ours / core floor = {ms['ours'] / ms['core floor']:.2f}x (this package's own share: "
        f"{ms['ours'] - ms['core floor']:.3f} ms a call)"
    )
    met_openai, met_bare = vs_openai <= 0.7, vs_bare <= 1.5
    result("text call (vs ChatOpenAI)", ms["ours"], ms["ChatOpenAI"], "ms", "<= 0.7x", met_openai)
    result(
        "text call (vs bare httpx2 POST)", ms["ours"], ms["bare POST"], "ms", "<= 1.5x", met_bare
    )


if __name__ == "__main__":
    main()
