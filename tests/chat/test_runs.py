"""Stream runs hand each event to their listeners as soon as it is published."""

from __future__ import annotations

import asyncio

from apps.chat.runs import Run


def test_a_listener_gets_each_event_before_the_next_one_is_produced() -> None:
    """A burst of upstream chunks is parsed without the producer ever waiting on the socket: each
    publish must still let the listeners send what it published (the first token's latency)."""

    async def scenario() -> list[tuple[int, int]]:
        run = Run(run_id="chat_burst", tenant_id=1, thread_id=None)
        received: list[tuple[int, int]] = []  # (event number, events published by then)

        async def listen() -> None:
            async for item in run.follow(0, keepalive=10):
                if item is not None:
                    received.append((item[0], len(run.events)))

        listener = asyncio.get_running_loop().create_task(listen())
        await asyncio.sleep(0)  # the listener is waiting
        for number in range(3):
            await run.publish({"type": "content", "content": f"w{number}"})
        run.finished = True
        run._wake()
        await listener
        return received

    assert asyncio.run(scenario()) == [(1, 1), (2, 2), (3, 3)]
