"""Note the models that embedded the items stored before models were noted (apps/core/embeddings/
usage.py): one DISTINCT over the table, once, so a start on another model says they need a reembed."""

from __future__ import annotations

from django.db import migrations

NOTE = (
    "INSERT INTO core_embeddedwith (kind, model_id, noted_at) "
    "SELECT DISTINCT 'memory', embedding_model, now() FROM memory_memoryitem "
    "ON CONFLICT DO NOTHING"
)


class Migration(migrations.Migration):
    dependencies = [
        ("memory", "0002_cap_counter_trigger"),
        ("core", "0002_embedded_with"),
    ]

    operations = [migrations.RunSQL(NOTE, reverse_sql=migrations.RunSQL.noop)]
