"""Keep a chunk's vector in its row (STORAGE PLAIN), not in the TOAST table.

pgvector's type defaults to EXTERNAL, and a chunk row (text, tsvector, a 1.5 KB vector) is over
PostgreSQL's 2 KB TOAST threshold, so every vector sat out of line: the exact ranking of a tenant
without an index of its own (every tenant under RESOURCES_TENANT_INDEX_MIN_CHUNKS) fetched each
vector through the TOAST index, ~3 buffer reads a chunk. Measured on 60k chunks, the distance scan
took 120-125 ms with the vectors out of line and 32-49 ms in line (bench/resources.py's data).

The text and the tsvector can still move out of line, so a row always fits a page. Rows written
before keep their vector where it is until they are written again (`resources_reembed --all`).
"""

from __future__ import annotations

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("resources", "0005_note_embedding_models")]

    operations = [
        # ALTER TABLE refuses to run while the transaction has deferred checks pending on the
        # table (Django's foreign keys are DEFERRABLE INITIALLY DEFERRED): rows written earlier in
        # the same transaction, as a data migration before it would. Checked now, they clear.
        migrations.RunSQL(
            "SET CONSTRAINTS ALL IMMEDIATE; "
            "ALTER TABLE resources_resourcechunk ALTER COLUMN embedding SET STORAGE PLAIN",
            reverse_sql=(
                "SET CONSTRAINTS ALL IMMEDIATE; "
                "ALTER TABLE resources_resourcechunk ALTER COLUMN embedding SET STORAGE EXTERNAL"
            ),
        )
    ]
