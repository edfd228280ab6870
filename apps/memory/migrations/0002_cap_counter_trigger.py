"""The plan's memory-item cap reads a counter (billing's CapCounter) kept by a trigger on this
table, set here from the items there are."""

from django.db import migrations

from apps.billing.migrations._cap_triggers import cap_counter_trigger


class Migration(migrations.Migration):
    dependencies = [
        ("memory", "0001_initial"),
        ("billing", "0006_cap_counter"),
    ]

    operations = [cap_counter_trigger(table="memory_memoryitem", what="memory_items", measure="1")]
