"""apps.core.loop_io.Gathered: the concurrent calls of one event loop sent as one round trip."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from apps.core.loop_io import Gathered


class Remote:
    """A service whose round trips the test holds open and lets go one at a time."""

    def __init__(self) -> None:
        self.sent: list[list[str]] = []
        self.release: asyncio.Queue[BaseException | None] = asyncio.Queue()

    async def send(self, items: Sequence[str]) -> list[str]:
        self.sent.append(list(items))
        error = await self.release.get()
        if error is not None:
            raise error
        return [item.upper() for item in items]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_a_call_alone_is_sent_at_once_alone() -> None:
    remote = Remote()
    gathered = Gathered("test", remote.send)
    call = asyncio.ensure_future(gathered("a"))
    await settle()
    assert remote.sent == [["a"]]
    remote.release.put_nowait(None)
    assert await call == "A"


@pytest.mark.asyncio
async def test_calls_made_while_one_is_out_go_together_next_each_with_its_result() -> None:
    remote = Remote()
    gathered = Gathered("test", remote.send)
    first = asyncio.ensure_future(gathered("a"))
    await settle()
    waiting = [asyncio.ensure_future(gathered(item)) for item in ("b", "c", "b")]
    await settle()
    assert remote.sent == [["a"]]  # they wait for the first round trip
    remote.release.put_nowait(None)
    await settle()
    assert remote.sent == [["a"], ["b", "c", "b"]]
    later = asyncio.ensure_future(gathered("d"))  # the second is out: d waits for the third
    await settle()
    remote.release.put_nowait(None)
    remote.release.put_nowait(None)
    assert [await first, *[await call for call in waiting], await later] == ["A", "B", "C", "B", "D"]
    assert remote.sent == [["a"], ["b", "c", "b"], ["d"]]
    # Nothing is out now: the next call goes at once, alone again.
    alone = asyncio.ensure_future(gathered("e"))
    await settle()
    assert remote.sent[-1] == ["e"]
    remote.release.put_nowait(None)
    assert await alone == "E"


@pytest.mark.asyncio
async def test_a_failed_round_trip_is_the_error_of_each_call_in_it_and_not_of_the_next() -> None:
    remote = Remote()
    gathered = Gathered("test", remote.send)
    first = asyncio.ensure_future(gathered("a"))
    await settle()
    waiting = [asyncio.ensure_future(gathered(item)) for item in ("b", "c")]
    await settle()
    remote.release.put_nowait(ConnectionError("down"))
    with pytest.raises(ConnectionError):
        await first
    await settle()
    assert remote.sent == [["a"], ["b", "c"]]
    remote.release.put_nowait(ConnectionError("still down"))
    for call in waiting:
        with pytest.raises(ConnectionError, match="still down"):
            await call
    after = asyncio.ensure_future(gathered("d"))
    await settle()
    remote.release.put_nowait(None)
    assert await after == "D"


@pytest.mark.asyncio
async def test_a_cancelled_call_takes_nothing_from_the_others() -> None:
    remote = Remote()
    gathered = Gathered("test", remote.send)
    first = asyncio.ensure_future(gathered("a"))
    await settle()
    gone, kept = asyncio.ensure_future(gathered("b")), asyncio.ensure_future(gathered("c"))
    await settle()
    gone.cancel()
    first.cancel()  # the caller that sends a round trip itself, gone with its client
    await settle()
    remote.release.put_nowait(None)  # lets go of the round trip the waiting calls went on
    assert await kept == "C"
    assert gone.cancelled() and first.cancelled()
    assert remote.sent == [["a"], ["b", "c"]]  # b went with c: its result is dropped
    remote.release.put_nowait(None)
    assert await gathered("d") == "D"


@pytest.mark.asyncio
async def test_the_calls_of_a_cancelled_round_trip_are_cancelled_not_left_waiting() -> None:
    remote = Remote()
    gathered = Gathered("test", remote.send)
    first = asyncio.ensure_future(gathered("a"))
    await settle()
    sent_with_b = asyncio.ensure_future(gathered("b"))
    await settle()
    remote.release.put_nowait(None)
    await settle()
    queued = asyncio.ensure_future(gathered("c"))  # waits behind b's round trip
    await settle()
    queue = next(iter(gathered._queues.values()))
    assert queue.sender is not None
    queue.sender.cancel()  # as when the loop closes
    await settle()
    assert await first == "A"
    assert sent_with_b.cancelled() and queued.cancelled()
    assert not queue.sending and not queue.waiting
    alone = asyncio.ensure_future(gathered("d"))  # and the next call is sent again
    await settle()
    remote.release.put_nowait(None)
    assert await alone == "D"


@pytest.mark.asyncio
async def test_each_event_loop_gathers_its_own_calls() -> None:
    seen: list[list[int]] = []

    async def send(items: Sequence[int]) -> list[int]:
        seen.append(list(items))
        await asyncio.sleep(0.01)
        return [item * 2 for item in items]

    gathered = Gathered("test", send)
    assert await asyncio.gather(*(gathered(n) for n in range(4))) == [0, 2, 4, 6]
    assert seen == [[0], [1, 2, 3]]
    other = await asyncio.to_thread(lambda: asyncio.run(gathered(5)))  # another thread's loop
    assert other == 10
    assert seen[-1] == [5]


def test_driven_without_an_event_loop_a_call_is_sent_alone() -> None:
    sent: list[list[str]] = []

    async def send(items: Sequence[str]) -> list[str]:
        sent.append(list(items))
        return list(items)

    coroutine = Gathered("test", send)("a")
    with pytest.raises(StopIteration) as done:
        coroutine.send(None)
    assert done.value.value == "a"
    assert sent == [["a"]]
