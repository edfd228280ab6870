"""Re-embed resource chunks after the embedding model changes, or after background jobs failed."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.resources.indexing import resources_reembed
from apps.tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Recompute resource chunk embeddings for one tenant (--tenant SLUG) or every tenant (--all), "
        "in the batches the background jobs use."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--tenant", help="the tenant's slug")
        target.add_argument("--all", action="store_true", help="every tenant")
        parser.add_argument(
            "--missing",
            action="store_true",
            help="only chunks without a vector (left by a failed or cancelled job)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = None
        if options["tenant"]:
            tenant = Tenant.objects.filter(slug=options["tenant"]).first()
            if tenant is None:
                raise CommandError(f"No tenant with slug {options['tenant']!r}")
        started = time.monotonic()
        written = resources_reembed(tenant_id=tenant.pk if tenant else None, missing_only=options["missing"])
        scope = f"tenant {tenant.slug}" if tenant else "all tenants"
        self.stdout.write(
            f"Re-embedded {written} resource chunks ({scope}) in {time.monotonic() - started:.1f}s"
        )
