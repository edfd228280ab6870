"""Re-embed memory after the embedding model (or the text built from values) changes."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.memory.services import memory_items_reembed
from apps.tenants.models import Tenant


class Command(BaseCommand):
    help = "Recompute memory embeddings for one tenant (--tenant SLUG) or every tenant (--all)."

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--tenant", help="the tenant's slug")
        target.add_argument("--all", action="store_true", help="every tenant")
        parser.add_argument(
            "--force",
            action="store_true",
            help="re-embed every item, not only those whose model or text changed",
        )
        parser.add_argument("--batch-size", type=int, default=256)

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = None
        if options["tenant"]:
            tenant = Tenant.objects.filter(slug=options["tenant"]).first()
            if tenant is None:
                raise CommandError(f"No tenant with slug {options['tenant']!r}")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        started = time.monotonic()
        changed = memory_items_reembed(
            tenant=tenant, stale_only=not options["force"], batch_size=options["batch_size"]
        )
        scope = f"tenant {tenant.slug}" if tenant else "all tenants"
        self.stdout.write(
            f"Re-embedded {changed} memory items ({scope}) in {time.monotonic() - started:.1f}s"
        )
