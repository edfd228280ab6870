"""The base of the `<app>_indexes` commands: sync one table's per-tenant HNSW indexes now rather
than at the next beat run (after a bulk import, say)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.vector_indexes import TenantVectorIndexes


class VectorIndexCommand(BaseCommand):
    indexes: TenantVectorIndexes

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--min-rows",
            type=int,
            default=None,
            help=f"rows a tenant needs for an index of its own (default {self.indexes.min_rows_setting})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        min_rows = options["min_rows"]
        if min_rows is not None and min_rows < 1:
            raise CommandError("--min-rows must be at least 1")
        report = self.indexes.sync(min_rows=min_rows)
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
