"""Keep an item's vector in its row (STORAGE PLAIN), not in the TOAST table.

pgvector's type defaults to EXTERNAL: once an item's row passes PostgreSQL's 2 KB TOAST threshold
(a value of a kilobyte or so beside the 1.5 KB vector), its vector moved out of line, and the exact
scan of a small tenant fetched it through the TOAST index (apps/resources' 0006 measured 3-4x on
such scans). The value and the embedded text can still move out of line, so a row always fits a
page. Rows written before keep their vector where it is until they are written again.
"""

from __future__ import annotations

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("memory", "0003_note_embedding_models")]

    operations = [
        # ALTER TABLE refuses to run while the transaction has deferred checks pending on the
        # table (Django's foreign keys are DEFERRABLE INITIALLY DEFERRED): rows written earlier in
        # the same transaction, as a data migration before it would. Checked now, they clear.
        migrations.RunSQL(
            "SET CONSTRAINTS ALL IMMEDIATE; "
            "ALTER TABLE memory_memoryitem ALTER COLUMN embedding SET STORAGE PLAIN",
            reverse_sql=(
                "SET CONSTRAINTS ALL IMMEDIATE; "
                "ALTER TABLE memory_memoryitem ALTER COLUMN embedding SET STORAGE EXTERNAL"
            ),
        )
    ]
