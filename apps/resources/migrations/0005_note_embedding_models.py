"""Note that chunks with vectors were stored before their model was noted (apps/core/embeddings/
usage.py; a chunk row keeps no model id): model "" for them, so a start says a reembed may be needed."""

from __future__ import annotations

from django.db import migrations

NOTE = (
    "INSERT INTO core_embeddedwith (kind, model_id, noted_at) "
    "SELECT 'resources', '', now() "
    "WHERE EXISTS (SELECT 1 FROM resources_resourcechunk WHERE embedding IS NOT NULL) "
    "ON CONFLICT DO NOTHING"
)


class Migration(migrations.Migration):
    dependencies = [
        ("resources", "0004_cap_counter_trigger"),
        ("core", "0002_embedded_with"),
    ]

    operations = [migrations.RunSQL(NOTE, reverse_sql=migrations.RunSQL.noop)]
