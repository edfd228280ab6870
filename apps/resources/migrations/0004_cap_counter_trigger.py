"""The plan's storage cap reads a counter (billing's CapCounter) of the content bytes kept by a
trigger on this table (an update that changes the content moves it too), set here from the
resources there are."""

from django.db import migrations

from apps.billing.migrations._cap_triggers import cap_counter_trigger


class Migration(migrations.Migration):
    dependencies = [
        ("resources", "0003_chunks_without_shared_hnsw"),
        ("billing", "0006_cap_counter"),
    ]

    operations = [
        cap_counter_trigger(
            table="resources_resource", what="resource_bytes", measure="octet_length(content)", on_update=True
        )
    ]
