from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.errors import ApplicationError
from apps.tenants.models import Tenant
from apps.tenants.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a tenant and print only the key (it is shown this once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="the tenant's slug")
        parser.add_argument("--scopes", required=True, help='comma-separated, e.g. "chat.*,memory.*"')
        parser.add_argument("--name", default="default")
        parser.add_argument("--expires-in-days", type=int, default=None)
        parser.add_argument(
            "--monthly-tokens",
            type=int,
            default=None,
            help="the key's own cap on LLM tokens per billing period (402 quota_exceeded past it)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}")
        try:
            issued = api_key_create(
                tenant=tenant,
                scopes=options["scopes"],
                name=options["name"],
                expires_in_days=options["expires_in_days"],
                monthly_token_cap=options["monthly_tokens"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(issued.plaintext)
