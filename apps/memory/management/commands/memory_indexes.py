"""Build (and drop) the HNSW indexes big memory tenants get of their own, now rather than at the
next beat run: after a bulk import, say."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.memory.tenant_indexes import sync_tenant_indexes


class Command(BaseCommand):
    help = "Give every tenant with at least --min-rows memory items an HNSW index of its own."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--min-rows",
            type=int,
            default=settings.SLOP_MEMORY_TENANT_INDEX_MIN_ROWS,
            help="items a tenant needs for an index of its own (default SLOP_MEMORY_TENANT_INDEX_MIN_ROWS)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["min_rows"] < 1:
            raise CommandError("--min-rows must be at least 1")
        report = sync_tenant_indexes(min_rows=options["min_rows"])
        if report.skipped:
            raise CommandError("Another sync is running; try again when it has finished")
        for tenant_id, seconds in report.built.items():
            self.stdout.write(f"built the index of tenant {tenant_id} in {seconds:.1f}s")
        for tenant_id in report.dropped:
            self.stdout.write(f"dropped the index of tenant {tenant_id}")
        for tenant_id, error in report.failed.items():
            self.stderr.write(f"tenant {tenant_id}: {error}")
        if report.failed:
            raise CommandError(f"{len(report.failed)} index build(s) failed")
        if not (report.built or report.dropped):
            self.stdout.write("Tenant indexes are up to date")
