"""Vectors stay in their rows: pgvector's type defaults to EXTERNAL storage, which put every
resource chunk's vector (a row over the 2 KB TOAST threshold) in the TOAST table, and an exact
ranking then fetched each one through the TOAST index (3-4x slower scans)."""

from __future__ import annotations

import pytest
from django.db import connection

from apps.memory.models import MemoryItem
from apps.resources.models import ResourceChunk


@pytest.mark.django_db
@pytest.mark.parametrize("model", [MemoryItem, ResourceChunk])
def test_the_vector_column_is_stored_in_line(model: type) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attstorage FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'embedding'",
            [model._meta.db_table],
        )
        assert cursor.fetchone() == ("p",)
