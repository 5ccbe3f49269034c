"""Dynamic batching, with a stand-in for the Pipeline that records its generate calls."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

import pytest

from seq2seqkit.pipeline import Hypothesis, Output
from seq2seqkit.serve.batching import Batcher, BatchReport, Decoding

GREEDY = Decoding(beam=1, nbest=1, length_penalty=None)
BEAM = Decoding(beam=4, nbest=2, length_penalty=0.5)


class Recorder:
    """Answers each text with itself reversed; records the texts of each call and its thread."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], int]] = []
        self.threads: set[str] = set()

    def generate(self, texts: list[str], beam: int, nbest: int, **kwargs: object) -> list[Output]:
        self.calls.append((list(texts), beam))
        self.threads.add(threading.current_thread().name)
        return [Output(list(text), [Hypothesis(text[::-1], [], -1.0, None)]) for text in texts]


def run_batcher(
    recorder: Recorder, jobs: list[tuple[list[str], Decoding, int]], **options: Any
) -> tuple[list[list[Output]], list[BatchReport]]:
    """Submit ``jobs`` concurrently to a Batcher over ``recorder``; their outputs and the batches."""
    reports: list[BatchReport] = []

    async def main() -> list[list[Output]]:
        settings = {"max_wait": 0.05, "max_tokens": 100, **options}
        batcher = Batcher(recorder, on_batch=reports.append, **settings)  # type: ignore[arg-type]
        batcher.start()
        calls: list[Coroutine[Any, Any, list[Output]]] = [batcher.submit(*job) for job in jobs]
        try:
            return list(await asyncio.gather(*calls))
        finally:
            await batcher.stop()

    return asyncio.run(main()), reports


def test_concurrent_jobs_are_decoded_in_one_call_off_the_event_loop() -> None:
    recorder = Recorder()
    jobs = [([f"in{i}", f"x{i}"], GREEDY, 2) for i in range(8)]
    outputs, reports = run_batcher(recorder, jobs)
    assert len(recorder.calls) == 1 and len(recorder.calls[0][0]) == 16
    assert [[o.text for o in out] for out in outputs] == [[f"{i}ni", f"{i}x"] for i in range(8)]
    assert reports[0].requests == 8 and reports[0].inputs == 16 and reports[0].tokens == 16
    assert recorder.threads and all(name.startswith("seq2seqkit-decode") for name in recorder.threads)


def test_jobs_that_decode_differently_get_their_own_calls() -> None:
    recorder = Recorder()
    outputs, _ = run_batcher(recorder, [(["a"], GREEDY, 1), (["b"], BEAM, 1), (["c"], GREEDY, 1)])
    assert sorted(recorder.calls) == [(["a", "c"], 1), (["b"], 4)]
    assert [out[0].text for out in outputs] == ["a", "b", "c"]


def test_a_batch_stops_gathering_at_the_token_budget() -> None:
    recorder = Recorder()
    run_batcher(recorder, [([str(i)], GREEDY, 40) for i in range(5)], max_tokens=100)
    assert [len(texts) for texts, _ in recorder.calls] == [3, 2]  # 120 tokens, then the rest


def test_without_batching_each_job_is_decoded_alone() -> None:
    recorder = Recorder()
    outputs, reports = run_batcher(recorder, [([str(i)], GREEDY, 1) for i in range(4)], enabled=False)
    assert [texts for texts, _ in recorder.calls] == [["0"], ["1"], ["2"], ["3"]]
    assert [r.requests for r in reports] == [1, 1, 1, 1]


def test_an_abandoned_job_is_not_decoded() -> None:
    recorder = Recorder()

    async def main() -> None:
        batcher = Batcher(recorder, max_wait=0.1, max_tokens=100)  # type: ignore[arg-type]
        batcher.start()
        waiting = asyncio.ensure_future(batcher.submit(["gone"], GREEDY, 1))
        await asyncio.sleep(0.02)
        waiting.cancel()  # the client timed out or went away inside the batch window
        kept = await batcher.submit(["kept"], GREEDY, 1)
        assert kept[0].text == "tpek"
        await batcher.stop()

    asyncio.run(main())
    assert recorder.calls == [(["kept"], 1)]


def test_a_failing_batch_fails_its_callers_and_the_batcher_goes_on() -> None:
    class Failing(Recorder):
        def generate(self, texts: list[str], beam: int, nbest: int, **kwargs: object) -> list[Output]:
            if texts == ["bad"]:
                raise RuntimeError("boom")
            return super().generate(texts, beam, nbest, **kwargs)

    recorder = Failing()

    async def main() -> None:
        batcher = Batcher(recorder, max_wait=0.0, max_tokens=100)  # type: ignore[arg-type]
        batcher.start()
        with pytest.raises(RuntimeError, match="boom"):
            await batcher.submit(["bad"], GREEDY, 1)
        assert (await batcher.submit(["ok"], GREEDY, 1))[0].text == "ko"
        await batcher.stop()

    asyncio.run(main())
