"""Dynamic batching: concurrent requests for one model decoded as one ``Pipeline.generate`` call.

A collector task takes the first waiting job, then gathers more for up to ``max_wait`` seconds or
until ``max_tokens`` source tokens are waiting, and hands the batch to the model's worker thread
(the event loop keeps answering meanwhile). Jobs that decode alike (beam, n-best, length penalty)
go into one call; while it runs the next batch gathers, so under load batches grow by
themselves. With batching off each job is decoded alone, in arrival order.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from seq2seqkit.data.audio import Waveform
from seq2seqkit.pipeline import Output, Pipeline

log = logging.getLogger(__name__)
Inputs = list[str | Waveform]  # texts, or a speech model's waveforms (POST /v1/transcribe)


@dataclass(frozen=True)
class Decoding:
    """The settings that must agree for jobs to share one ``generate`` call."""

    beam: int
    nbest: int
    length_penalty: float | None
    copy_gates: bool = False


@dataclass
class Job:
    """One request's inputs, waiting for their outputs."""

    texts: Inputs
    decoding: Decoding
    tokens: int  # source tokens, counted against the batch budget
    future: asyncio.Future[list[Output]] = field(repr=False)


@dataclass(frozen=True)
class BatchReport:
    """What one ``generate`` call decoded, for the metrics."""

    requests: int
    inputs: int
    tokens: int
    seconds: float


class Batcher:
    """Gathers one model's jobs into batches and decodes them in a worker thread."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        max_wait: float,
        max_tokens: int,
        enabled: bool = True,
        on_batch: Callable[[BatchReport], None] = lambda report: None,
    ) -> None:
        self.pipeline = pipeline
        self.max_wait = max_wait
        self.max_tokens = max_tokens
        self.enabled = enabled
        self.on_batch = on_batch
        self.waiting_inputs = 0
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        # one thread: a model decodes one batch at a time (torch spreads it over the cores)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seq2seqkit-decode")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._collect())

    async def stop(self) -> None:
        """Stop gathering (callers finish first: uvicorn closes connections before the lifespan ends)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._worker.shutdown(wait=True)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def submit(self, texts: Inputs, decoding: Decoding, tokens: int) -> list[Output]:
        """The outputs for ``texts``; cancelling the caller drops the job if it has not started."""
        job = Job(texts, decoding, tokens, asyncio.get_running_loop().create_future())
        self.waiting_inputs += len(texts)
        self._queue.put_nowait(job)
        return await job.future

    async def _collect(self) -> None:
        while True:
            jobs = [await self._queue.get()]
            if self.enabled:
                await self._gather(jobs)
            live = [job for job in jobs if not job.future.done()]  # timed out or disconnected: skip
            self.waiting_inputs -= sum(len(job.texts) for job in jobs)
            for decoding, group in itertools.groupby(
                sorted(live, key=lambda job: _order(job.decoding)), key=lambda job: job.decoding
            ):
                await self._decode(decoding, list(group))

    async def _gather(self, jobs: list[Job]) -> None:
        """Add waiting jobs to ``jobs`` until the budget is spent or ``max_wait`` has passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        tokens = jobs[0].tokens
        while tokens < self.max_tokens:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    return
            jobs.append(job)
            tokens += job.tokens

    async def _decode(self, decoding: Decoding, jobs: list[Job]) -> None:
        """One ``generate`` call for ``jobs``; each future gets its own slice of the outputs."""
        texts = [text for job in jobs for text in job.texts]
        start = time.perf_counter()
        try:
            outputs = await asyncio.get_running_loop().run_in_executor(
                self._worker, self._generate, texts, decoding
            )
        except Exception as err:  # a bug, not the client's doing: each caller answers 500
            log.exception("decoding a batch of %d inputs failed", len(texts))
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(err)
            return
        self.on_batch(
            BatchReport(len(jobs), len(texts), sum(job.tokens for job in jobs), time.perf_counter() - start)
        )
        offset = 0
        for job in jobs:
            if not job.future.done():
                job.future.set_result(outputs[offset : offset + len(job.texts)])
            offset += len(job.texts)

    def _generate(self, texts: Inputs, decoding: Decoding) -> list[Output]:
        return self.pipeline.generate(
            texts,
            beam=decoding.beam,
            nbest=decoding.nbest,
            length_penalty=decoding.length_penalty,
            copy_gates=decoding.copy_gates,
        )


def _order(decoding: Decoding) -> tuple:
    """A sort key for grouping (None sorts before any penalty)."""
    penalty = decoding.length_penalty
    return (decoding.beam, decoding.nbest, penalty is not None, penalty or 0.0, decoding.copy_gates)
