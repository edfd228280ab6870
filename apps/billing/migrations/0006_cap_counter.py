"""Cap counters (CapCounter): the plan caps read one row per tenant and cap instead of counting
the tenant's rows on every addition. Billing counts the tenants app's API keys (those not revoked)
and members here; memory and resources install their own tables' triggers (their migrations)."""

import django.db.models.deletion
from django.db import migrations, models

from apps.billing.migrations._cap_triggers import cap_counter_trigger


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0005_seed_prices_and_caps"),
        ("tenants", "0006_invitation"),
    ]

    operations = [
        migrations.CreateModel(
            name="CapCounter",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("what", models.CharField(max_length=32)),
                ("used", models.BigIntegerField(default=0)),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="tenants.tenant"
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("tenant", "what"), name="billing_capcounter_unique")
                ],
            },
        ),
        cap_counter_trigger(
            table="tenants_apikey",
            what="api_keys",
            measure="CASE WHEN revoked_at IS NULL THEN 1 ELSE 0 END",
            on_update=True,  # revoking
        ),
        cap_counter_trigger(table="tenants_membership", what="members", measure="1"),
    ]
