from __future__ import annotations

from django.db import migrations
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    """pgvector, for memory and resource embeddings."""

    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [VectorExtension()]
