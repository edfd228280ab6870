from __future__ import annotations

from typing import Any

from django.db import migrations, models

import apps.tenants.models

# What `ensure_demo_tenant` gives a new demo tenant; an existing one gets it once, here, so that
# `make run` on an old data folder serves the reference clients as a fresh one does.
DEMO_PUBLIC_SCOPES = ["chat.*", "tools.*", "memory.*", "resources.*"]


def demo_public_surface(apps: Any, schema_editor: Any) -> None:
    Tenant = apps.get_model("tenants", "Tenant")
    Tenant.objects.filter(slug="demo", public_scopes=[]).update(public_scopes=DEMO_PUBLIC_SCOPES)


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0002_tenant_rate_limit"),
    ]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="public_scopes",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text=(
                    "Scopes of key-less requests under /t/<slug>/ (empty: no public surface). `*` "
                    "covers chat, tools, memory and resources; pay (and any other area) only when "
                    "named, e.g. pay.read"
                ),
                validators=[apps.tenants.models.validate_public_scopes],
            ),
        ),
        migrations.RunPython(demo_public_surface, migrations.RunPython.noop),
    ]
