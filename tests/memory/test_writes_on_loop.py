"""The event loop's concurrent overwrites of unchanged texts (services.memory_item_store_on_loop)
restamped together, in PostgreSQL through the loop's own asyncio connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.db import connections
from django.utils import timezone

from apps.core import loop_io
from apps.memory import services
from apps.memory.models import MemoryItem
from apps.tenants.models import Tenant

pytestmark = pytest.mark.django_db(transaction=True)  # the loop's connections see committed rows


@pytest_asyncio.fixture(autouse=True)
async def closed_after() -> AsyncIterator[None]:
    """The loop's pool, and the connection of sync_to_async's thread, closed after each test."""
    yield
    await loop_io.close()
    await sync_to_async(connections.close_all)()


def restamp_of(stored: MemoryItem, value: Any, later: timedelta) -> MemoryItem:
    """A write of `value` to the stored item's key, with its text (its content_hash)."""
    return MemoryItem(
        tenant_id=stored.tenant_id,
        key=stored.key,
        value=value,
        updated_at=stored.updated_at + later,
        content_hash=stored.content_hash,
    )


@pytest.mark.asyncio
async def test_concurrent_restamps_go_together_each_to_its_own_tenants_row_in_order(
    alice: Tenant, charlie: Tenant, remember: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    await sync_to_async(remember)(alice, {"k1": "same text", "k2": "other"})
    await sync_to_async(remember)(charlie, {"k1": "same text"})
    rows = await sync_to_async(
        lambda: {(item.tenant_id, item.key): item for item in MemoryItem.objects.unscoped()}
    )()
    alice_k1, alice_k2, charlie_k1 = rows[alice.pk, "k1"], rows[alice.pk, "k2"], rows[charlie.pk, "k1"]
    second = timedelta(seconds=1)
    changed_text = restamp_of(alice_k2, "new", second)
    changed_text.content_hash = "not the stored text's"
    writes = [
        restamp_of(alice_k1, {"n": 1}, second),
        restamp_of(alice_k1, {"n": 2}, 2 * second),  # the same key again: applied after the first
        restamp_of(charlie_k1, {"charlie": True}, second),
        changed_text,  # the text changed: not a restamp
        MemoryItem(
            tenant_id=charlie.pk,
            key="k2",
            value=1,
            updated_at=timezone.now(),
            content_hash=alice_k2.content_hash,
        ),
    ]
    sent: list[int] = []
    real = loop_io.fetch_all

    async def counted(sql: str, params: tuple[Any, ...]) -> Any:
        sent.append(len(params[0]))
        return await real(sql, params)

    monkeypatch.setattr(loop_io, "fetch_all", counted)
    written = await services._restamp_all(writes)
    assert written == [alice_k1.pk, alice_k1.pk, charlie_k1.pk, None, None]
    assert sent == [4, 1]  # one statement for the distinct keys, one for the key written again
    after = await sync_to_async(
        lambda: {(item.tenant_id, item.key): item for item in MemoryItem.objects.unscoped()}
    )()
    assert (after[alice.pk, "k1"].value, after[alice.pk, "k1"].updated_at) == (
        {"n": 2},
        alice_k1.updated_at + 2 * second,
    )
    assert after[charlie.pk, "k1"].value == {"charlie": True}
    assert (after[alice.pk, "k2"].value, after[alice.pk, "k2"].updated_at) == ("other", alice_k2.updated_at)
    assert (charlie.pk, "k2") not in after  # another tenant's hash names no row of this one
    assert after[alice.pk, "k1"].embedding_text == alice_k1.embedding_text  # the vector's text stands


@pytest.mark.asyncio
async def test_writes_on_the_loop_at_once_share_a_round_trip(
    alice: Tenant, remember: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    await sync_to_async(remember)(alice, {f"k{n}": "same text" for n in range(6)})
    stored = await sync_to_async(lambda: list(MemoryItem.objects.for_tenant(alice).order_by("key")))()
    sent: list[int] = []
    real = services._restamp_all

    async def counted(items: Any) -> Any:
        sent.append(len(items))
        return await real(items)

    monkeypatch.setattr(services, "_restamped_on_loop", loop_io.Gathered("test", counted))
    done = await asyncio.gather(
        *(
            services.memory_item_store_on_loop(restamp_of(item, {"v": 1}, timedelta(seconds=1)))
            for item in stored
        )
    )
    assert done == [True] * 6
    assert sent == [1, 5]
    values = await sync_to_async(lambda: [item.value for item in MemoryItem.objects.for_tenant(alice)])()
    assert values == [{"v": 1}] * 6
