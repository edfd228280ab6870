"""Concurrent callers of one in-process model share its forward passes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Job:
    texts: list[str]
    done: bool = False
    result: list[list[float]] = field(default_factory=list)
    error: BaseException | None = None


class Coalescer:
    """Runs `encode` for one batch at a time; callers waiting meanwhile share the next batch.

    Leader/follower: every caller queues its job and takes the run lock; whoever holds it encodes
    all queued jobs (up to `max_batch` texts) and hands each caller its vectors. A caller whose job
    was done by another thread returns as soon as it gets the lock. So the model is never entered
    by two threads at once, and 32 concurrent writers cost far fewer forward passes than 32."""

    def __init__(self, encode: Callable[[list[str]], list[list[float]]], max_batch: int) -> None:
        self._encode = encode
        self._max_batch = max_batch
        self._queue_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._queue: list[_Job] = []

    def run(self, texts: list[str]) -> list[list[float]]:
        job = _Job(texts=texts)
        with self._queue_lock:
            self._queue.append(job)
        while True:
            with self._run_lock:
                if job.done:
                    break
                batch = self._take()
                flat = [text for queued in batch for text in queued.texts]
                try:
                    vectors = self._encode(flat) if flat else []
                except BaseException as exc:
                    for queued in batch:
                        queued.error, queued.done = exc, True
                else:
                    start = 0
                    for queued in batch:
                        queued.result = vectors[start : start + len(queued.texts)]
                        start += len(queued.texts)
                        queued.done = True
                if job.done:
                    break
        if job.error is not None:
            raise job.error
        return job.result

    def _take(self) -> list[_Job]:
        with self._queue_lock:
            taken: list[_Job] = []
            size = 0
            while self._queue and (not taken or size + len(self._queue[0].texts) <= self._max_batch):
                job = self._queue.pop(0)
                taken.append(job)
                size += len(job.texts)
            return taken
