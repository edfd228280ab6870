from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from apps.core.errors import ApplicationError
from apps.tenants.services import tenant_create, tenant_public_scopes_set


class Command(BaseCommand):
    help = "Create a tenant (a team) and print its slug."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--slug", default=None, help="the slug to use (default: from the name)")
        parser.add_argument(
            "--public-scopes",
            default="",
            help="scopes of key-less requests under /t/<slug>/, e.g. 'chat.*,tools.safe.*' (default: none)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with transaction.atomic():
                tenant = tenant_create(name=options["name"], slug=options["slug"])
                if options["public_scopes"]:
                    tenant_public_scopes_set(tenant=tenant, scopes=options["public_scopes"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(tenant.slug)
