from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.errors import ApplicationError
from apps.tenants.services import api_key_revoke


class Command(BaseCommand):
    help = (
        "Revoke an API key by its prefix (the part after slop_<env>_); "
        "every process stops accepting it within seconds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            api_key = api_key_revoke(prefix=options["prefix"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"revoked {api_key.prefix} ({api_key.name}, tenant {api_key.tenant.slug})")
