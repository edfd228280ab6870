from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.errors import ApplicationError
from apps.tenants.services import tenant_create


class Command(BaseCommand):
    help = "Create a tenant (a team) and print its slug."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--slug", default=None, help="the slug to use (default: from the name)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = tenant_create(name=options["name"], slug=options["slug"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(tenant.slug)
