"""What the requests of one turn of an event loop hand to a slower writer, kept until the turn ends
and written once (logs.py: the request lines of the turn in one write). A loop's turn is the
callbacks it runs back to back; its end, the callback the first of them scheduled (`call_soon`).

(Metric figures were tried the same way, added up over the turn and written as one increment a
series: with a turn's fixed cost, ~2 µs, the ~20 % of requests answered alone in their turn cost
more than the others saved, ~0.7 µs a request in all.)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Kept = TypeVar("Kept")


class TurnBuffer(Generic[Kept]):
    """`current()` is what this turn of the running event loop has kept so far (`make()` at its
    first use in the turn); at the turn's end it goes to `write`. Off an event loop there is no
    turn: `current()` is None and the caller writes at once.

    What is kept is the thread's, with its loop (a thread runs one loop at a time; a loop closed
    before its turn ended leaves what it kept, not the next loop's): a weak dictionary by loop,
    its entry made and dropped each turn, was ~1.5 µs a turn."""

    def __init__(self, make: Callable[[], Kept], write: Callable[[Kept], None]) -> None:
        self._make = make
        self._write = write
        self._local = threading.local()

    def current(self) -> Kept | None:
        loop = asyncio._get_running_loop()
        if loop is None:
            return None
        local = self._local
        turn: tuple[asyncio.AbstractEventLoop, Kept] | None = getattr(local, "turn", None)
        if turn is None or turn[0] is not loop:
            turn = local.turn = (loop, self._make())
            loop.call_soon(self._end, local, turn)
        return turn[1]

    def _end(self, local: threading.local, turn: tuple[asyncio.AbstractEventLoop, Kept]) -> None:
        if getattr(local, "turn", None) is turn:
            local.turn = None
        self._write(turn[1])
