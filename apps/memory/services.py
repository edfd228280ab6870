"""Writes to a tenant's memory. Every write embeds first and touches the database last, so a failed
embedding or a bad value leaves the stored data exactly as it was."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from django.conf import settings
from django.db import connections, router, transaction
from django.utils import timezone

from apps.billing.caps import ensure_room
from apps.core import loop_io
from apps.core.embeddings import content_hash, embed_text, embedding_model_id, held_model_id, held_vector
from apps.core.embeddings.usage import forget_other_models, note_embedded, noted
from apps.core.errors import ApplicationError, NotFound, ValidationFailed
from apps.memory.models import KEY_MAX_LENGTH, MemoryItem
from apps.memory.text import embedding_text
from apps.tenants.models import Tenant


def validate_key(key: Any, field: str = "key") -> str:
    if not isinstance(key, str):
        raise ValidationFailed({field: ["Must be a string."]})
    if not 1 <= len(key) <= KEY_MAX_LENGTH:
        raise ValidationFailed({field: [f"Must be 1 to {KEY_MAX_LENGTH} characters long."]})
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise ValidationFailed({field: ["May not contain control characters."]})
    return key


MAX_VALUE_DEPTH = 64


def validate_prefix(prefix: Any, field: str = "prefix") -> str | None:
    """A key prefix from a query string or a filter: like a key, but may be empty (no filter)."""
    if prefix is None or prefix == "":
        return None
    return validate_key(prefix, field)


def _value_problem(value: Any) -> str | None:
    """Walks the value without recursion: too deep, or a U+0000 (which jsonb cannot hold)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_VALUE_DEPTH:
            return f"May nest at most {MAX_VALUE_DEPTH} levels deep."
        if isinstance(item, str):
            if "\x00" in item:
                return "May not contain the character U+0000."
        elif isinstance(item, dict):
            for name, inner in item.items():
                if "\x00" in str(name):
                    return "May not contain the character U+0000."
                stack.append((inner, depth + 1))
        elif isinstance(item, list):
            stack.extend((inner, depth + 1) for inner in item)
    return None


def validate_value(value: Any) -> Any:
    if value is None:
        raise ValidationFailed({"value": ["Is required: any JSON value except null."]})
    problem = _value_problem(value)
    if problem:
        raise ValidationFailed({"value": [problem]})
    try:
        encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise ValidationFailed({"value": ["Must be JSON (no NaN or Infinity)."]}) from None
    size = len(encoded.encode())
    limit = settings.SLOP_MEMORY_MAX_VALUE_BYTES
    if size > limit:
        raise ApplicationError(
            f"The value is {size} bytes; a memory value may be at most {limit} bytes",
            code="payload_too_large",
            status=413,
            extra={"limit_bytes": limit},
        )
    return value


def _item_to_write(tenant: Tenant, key: str, value: Any, model_id: str) -> MemoryItem:
    """The item a store writes, but for its vector (computed only when the text changed)."""
    text = embedding_text(key, value)
    now = timezone.now()
    return MemoryItem(
        tenant=tenant,
        key=key,
        value=value,
        created_at=now,
        updated_at=now,
        embedding_text=text,
        content_hash=content_hash(text, model_id),
        embedding_model=model_id,
    )


def _embedding_fields(tenant_id: int, key: str, value: Any) -> dict[str, Any]:
    text = embedding_text(key, value)
    model_id = embedding_model_id()
    note_embedded("memory", model_id)
    return {
        "embedding_text": text,
        "content_hash": content_hash(text, model_id),
        "embedding_model": model_id,
        "embedding": embed_text(text, tenant_id=tenant_id),
    }


_EXISTS_SQL = f"SELECT 1 FROM {MemoryItem._meta.db_table} WHERE tenant_id = %s AND key = %s LIMIT 1"  # noqa: S608


def _key_exists(tenant: Tenant, key: str) -> bool:
    """Whether the tenant has the key: the SQL written once rather than built by the ORM for each
    write (~100 µs of CPU a POST /memory, which asks up to twice: bench/request_cost.py). The
    tenant predicate is in the SQL; inside the write's transaction, on its connection."""
    with connections[router.db_for_write(MemoryItem)].cursor() as cursor:
        cursor.execute(_EXISTS_SQL, [tenant.pk, key])
        return cursor.fetchone() is not None


_UPSERT_COLUMNS = (
    "tenant_id",
    "created_at",
    "updated_at",
    "key",
    "value",
    "embedding_text",
    "content_hash",
    "embedding_model",
    "embedding",
)
_UPSERT_UPDATED = ("value", "updated_at", "embedding_text", "content_hash", "embedding_model", "embedding")
# The statement bulk_create(update_conflicts=True, unique_fields=["tenant", "key"], update_fields=...)
# sends, written once: the ORM built and compiled it for every write. With the vector's text
# below, the upsert and its transaction cost ~960 → ~470 µs of CPU in process (median of 8 runs of 200,
# the same row overwritten). The JSON value still goes through the model field's conversion; the
# tenant is in the row; created_at and updated_at of a new row are the same instant (the ORM's
# pre_save read the clock once for each).
_UPSERT_SQL = (
    f"INSERT INTO {MemoryItem._meta.db_table} ({', '.join(_UPSERT_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join(['%s'] * len(_UPSERT_COLUMNS))}) "
    "ON CONFLICT (tenant_id, key) DO UPDATE SET "
    + ", ".join(f"{column} = EXCLUDED.{column}" for column in _UPSERT_UPDATED)
    + " RETURNING id"
)
_VALUE_FIELD = MemoryItem._meta.get_field("value")
_EMBEDDING_FIELD = MemoryItem._meta.get_field("embedding")


def vector_text(vector: list[float]) -> str:
    """pgvector's text form of a vector, `[0.1,-0.2,...]`, as its VectorField writes it, by orjson:
    pgvector formats each of the 384 floats with str() (~225 µs of CPU a vector, in process,
    against ~8). Both write the shortest text that reads back as the same float64, so the server
    stores the same float32s (orjson writes `1e-7` where str() writes `1e-07`; PostgreSQL reads
    both)."""
    if not isinstance(vector, list):  # an array or a Vector: pgvector's own conversion
        return str(_EMBEDDING_FIELD.get_prep_value(vector))
    return orjson.dumps(vector).decode()


_OVERWRITE_SQL = (
    f"UPDATE {MemoryItem._meta.db_table} SET "  # noqa: S608
    + ", ".join(f"{column} = %s" for column in _UPSERT_UPDATED)
    + " WHERE tenant_id = %s AND key = %s RETURNING id"
)


# The same text under the same model (content_hash covers both): the stored vector stands, and
# only the value and its time are written. No indexed column changes, so PostgreSQL can update
# the row in place (HOT) instead of inserting it again into every index, the HNSW graph's too.
_RESTAMP_SQL = (
    f"UPDATE {MemoryItem._meta.db_table} SET value = %s, updated_at = %s "  # noqa: S608
    "WHERE tenant_id = %s AND key = %s AND content_hash = %s RETURNING id"
)


def _restamp(item: MemoryItem) -> bool:
    """Write the value and time of the tenant's item of this key if its stored text is the item's;
    whether it was. The tenant predicate is in the SQL."""
    return _write_existing(item, _RESTAMP_SQL, _restamp_params)


def _write_existing(item: MemoryItem, sql: str, params_of: Callable[[MemoryItem, Any], list[Any]]) -> bool:
    """One UPDATE ... RETURNING id of the item's row on Django's connection; whether it matched."""
    connection = connections[router.db_for_write(MemoryItem)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params_of(item, connection))
        row = cursor.fetchone()
    if row is None:
        return False
    item.pk = row[0]
    return True


def _restamp_params(item: MemoryItem, connection: Any) -> list[Any]:
    return [
        _VALUE_FIELD.get_db_prep_save(item.value, connection),  # (an adapter: no query)
        item.updated_at,
        item.tenant_id,
        item.key,
        item.content_hash,
    ]


def _overwrite(item: MemoryItem) -> bool:
    """Overwrite the tenant's item of this key, if it has one, in one statement; whether it had.
    The tenant predicate is in the SQL; (tenant, key) is unique."""
    return _write_existing(item, _OVERWRITE_SQL, _overwrite_params)


def _overwrite_params(item: MemoryItem, connection: Any) -> list[Any]:
    return [
        _VALUE_FIELD.get_db_prep_save(item.value, connection),  # (an adapter: no query)
        item.updated_at,
        item.embedding_text,
        item.content_hash,
        item.embedding_model,
        vector_text(item.embedding),
        item.tenant_id,
        item.key,
    ]


def memory_item_held_for_store(*, tenant: Tenant, key: str, value: Any) -> MemoryItem | None:
    """What memory_item_store would write, made from this process's memory alone, for code on the
    event loop (memory_item_store_on_loop): its vector if this process holds it (else None), and
    None for the whole when it has not built its embedding provider yet. A bad key or value raises
    as memory_item_store does."""
    key = validate_key(key)
    value = validate_value(value)
    model_id = held_model_id()
    if model_id is None:
        return None
    item = _item_to_write(tenant, key, value, model_id)
    item.embedding = held_vector(item.embedding_text, tenant_id=tenant.pk, model_id=model_id)
    return item


@functools.cache
def _adapting_connection() -> Any:
    """A connection object of our own for its adapters alone (JSONField's get_db_prep_save): it
    never connects. On the event loop `connections[alias]` is per task (an asgiref Local), and
    built one for every request: ~3 % of a POST /memory's worker time."""
    return connections.create_connection(router.db_for_write(MemoryItem))


async def memory_item_store_on_loop(item: MemoryItem) -> bool:
    """memory_item_store's writes of an existing key, on the event loop (apps.core.loop_io), each
    one statement, committed: the restamp of an unchanged text, else the overwrite when the item's
    vector is held here. False when neither could be made (nothing written): a new key, whose
    cap is checked, or a vector to compute are memory_item_store's (on a thread)."""
    pk = await _restamped_on_loop(item)
    if pk is None and item.embedding is not None and noted("memory", item.embedding_model):
        row = await loop_io.fetch_one(_OVERWRITE_SQL, tuple(_overwrite_params(item, _adapting_connection())))
        pk = None if row is None else row[0]
    if pk is None:
        return False
    item.pk = pk
    return True


# _RESTAMP_SQL for several items: each row is matched by its tenant and key (unique together),
# and only while its stored text is the item's.
_RESTAMPS_SQL = (
    f"UPDATE {MemoryItem._meta.db_table} AS item "  # noqa: S608
    "SET value = given.value, updated_at = given.updated_at "
    "FROM unnest(%s::jsonb[], %s::timestamptz[], %s::bigint[], %s::text[], %s::text[]) "
    "AS given(value, updated_at, tenant_id, key, content_hash) "
    "WHERE item.tenant_id = given.tenant_id AND item.key = given.key "
    "AND item.content_hash = given.content_hash RETURNING item.id, item.tenant_id, item.key"
)


async def _restamp_all(items: Sequence[MemoryItem]) -> list[int | None]:
    """The restamps of the event loop's concurrent writes: each item's row id, or None where the
    tenant has no such key with the item's text. One statement (one commit) for items of distinct
    keys; a key written twice at once is written again by a statement of its own after the first,
    so each write is applied, in the order they came."""
    connection = _adapting_connection()
    if len(items) == 1:
        row = await loop_io.fetch_one(_RESTAMP_SQL, tuple(_restamp_params(items[0], connection)))
        return [None if row is None else row[0]]
    written: list[int | None] = [None] * len(items)
    waiting = list(enumerate(items))
    while waiting:
        this: list[tuple[int, MemoryItem]] = []
        later: list[tuple[int, MemoryItem]] = []
        keys: set[tuple[int, str]] = set()
        for index, item in waiting:
            pair = (item.tenant_id, item.key)
            (later if pair in keys else this).append((index, item))
            keys.add(pair)
        columns = zip(*(_restamp_params(item, connection) for _, item in this), strict=True)
        rows = await loop_io.fetch_all(_RESTAMPS_SQL, tuple(list(column) for column in columns))
        found = {(tenant_id, key): pk for pk, tenant_id, key in rows}
        for index, item in this:
            written[index] = found.get((item.tenant_id, item.key))
        waiting = later
    return written


_restamped_on_loop = loop_io.Gathered("memory_restamp", _restamp_all)


def _upsert(item: MemoryItem) -> None:
    connection = connections[router.db_for_write(MemoryItem)]
    with connection.cursor() as cursor:
        cursor.execute(
            _UPSERT_SQL,
            [
                item.tenant_id,
                item.created_at,
                item.updated_at,
                item.key,
                _VALUE_FIELD.get_db_prep_save(item.value, connection),
                item.embedding_text,
                item.content_hash,
                item.embedding_model,
                vector_text(item.embedding),
            ],
        )
        item.pk = cursor.fetchone()[0]


def memory_item_store(*, tenant: Tenant, key: str, value: Any) -> MemoryItem:
    """Create the item or overwrite its value (safe under concurrent writers).

    A new key must fit the plan's memory-item cap (402 quota_exceeded otherwise, nothing stored);
    overwriting an existing key adds nothing, so it is never refused."""
    key = validate_key(key)
    value = validate_value(value)
    item = _item_to_write(tenant, key, value, embedding_model_id())
    # An existing key, the usual write: one UPDATE, with no transaction around it (it is one
    # statement) and no cap to check. It was a transaction of an existence check and the upsert:
    # four round trips (BEGIN, SELECT, INSERT, COMMIT) against one, ~300 µs of CPU a request.
    # When the key's text is unchanged (a value set again), the vector is not even computed.
    if _restamp(item):
        return item
    note_embedded("memory", item.embedding_model)
    item.embedding = embed_text(item.embedding_text, tenant_id=tenant.pk)
    if _overwrite(item):
        return item
    with transaction.atomic():
        # A new key: the billing cap (apps/billing/caps.py), held until this transaction commits.
        try:
            ensure_room(tenant, "memory_items")
        except ApplicationError:
            # A concurrent write of this same key made it since the UPDATE above found none: ours
            # is an overwrite then, which adds nothing (the upsert below updates that row).
            if not _key_exists(tenant, key):
                raise
        _upsert(item)
    return item


def memory_item_update(*, tenant: Tenant, key: str, value: Any) -> Any:
    """Replace the value of an existing item; returns the previous value (404 when missing)."""
    key = validate_key(key)
    value = validate_value(value)
    if not MemoryItem.objects.for_tenant(tenant).filter(key=key).exists():
        raise NotFound(f"Memory key not found: {key}")
    fields = _embedding_fields(tenant.pk, key, value)
    with transaction.atomic():
        item = MemoryItem.objects.for_tenant(tenant).select_for_update().filter(key=key).first()
        if item is None:  # deleted while we were embedding
            raise NotFound(f"Memory key not found: {key}")
        previous = item.value
        item.value = value
        for name, field_value in fields.items():
            setattr(item, name, field_value)
        item.save(update_fields=["value", "updated_at", *fields])
    return previous


def memory_item_delete(*, tenant: Tenant, key: str) -> None:
    deleted, _ = MemoryItem.objects.for_tenant(tenant).filter(key=key).delete()
    if not deleted:
        raise NotFound(f"Memory key not found: {key}")


def memory_items_reembed(*, tenant: Tenant | None, stale_only: bool, batch_size: int = 256) -> int:
    """Rebuild text and vectors (after a model or text change); returns how many rows changed.

    An item whose stored hash is that of its canonical text (`apps.memory.text`) under the current
    model is left alone unless `stale_only` is off. `tenant=None` walks every tenant: an operator
    command, so it crosses tenants on purpose; when it is done, every item is the running model's,
    and the other models noted for memory (apps/core/embeddings/usage.py) are forgotten."""
    from apps.core.embeddings import embed_texts

    model_id = embedding_model_id()
    note_embedded("memory", model_id)
    queryset = MemoryItem.objects.for_tenant(tenant) if tenant else MemoryItem.objects.unscoped()
    changed = 0
    last_pk = 0
    while True:
        rows = list(
            queryset.filter(pk__gt=last_pk)
            .order_by("pk")
            .only("pk", "key", "value", "content_hash", "updated_at", "tenant_id")[:batch_size]
        )
        if not rows:
            if tenant is None:
                forget_other_models("memory", model_id)
            return changed
        last_pk = rows[-1].pk
        todo = []
        for row in rows:
            text = embedding_text(row.key, row.value)
            digest = content_hash(text, model_id)
            if stale_only and digest == row.content_hash:
                continue
            todo.append((row, text, digest))
        if not todo:
            continue
        # Each tenant's rows through its own cache entries (the cache key carries the tenant).
        by_tenant: dict[int, list[tuple[MemoryItem, str, str]]] = {}
        for entry in todo:
            by_tenant.setdefault(entry[0].tenant_id, []).append(entry)
        for tenant_id, group in by_tenant.items():
            vectors = embed_texts([text for _, text, _ in group], tenant_id=tenant_id)
            with transaction.atomic():
                for (row, text, digest), vector in zip(group, vectors, strict=True):
                    # Only if the value is still the one embedded: a write since then (it moves
                    # updated_at) stored its own vector, which must not be replaced by this older one.
                    fields = {"embedding_text": text, "content_hash": digest, "embedding_model": model_id}
                    current = MemoryItem.objects.unscoped().filter(pk=row.pk, updated_at=row.updated_at)
                    changed += current.update(**fields, embedding=vector)
