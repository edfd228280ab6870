"""`manage.py billing_sync_plans`: create (or find) the Stripe Product and monthly Price of each
paid plan and link them, so Checkout has a price to sell. Safe to run again."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.billing.sync import plans_sync
from apps.core.errors import ApplicationError


class Command(BaseCommand):
    help = "Link every paid plan to a Stripe Product and monthly Price (creating what is missing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("plans", nargs="*", help="Only these plan slugs (default: every paid plan)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            results = plans_sync(slugs=options["plans"] or None)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        for result in results:
            self.stdout.write(str(result))
        self.stdout.write(f"{len(results)} plan(s) linked to Stripe")
