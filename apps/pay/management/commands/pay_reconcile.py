"""`manage.py pay_reconcile`: settle pending payments with Stripe now (what the beat task does)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from apps.pay.services import payment_reconcile, payments_to_reconcile


class Command(BaseCommand):
    help = "Settle pending and requires_action payments with Stripe (retries creates Stripe never answered)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=int,
            default=settings.SLOP_PAY_RECONCILE_AFTER_SECONDS,
            help="Only payments created at least this many seconds ago (default: %(default)s)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        payments = payments_to_reconcile(older_than_seconds=options["older_than"])
        for payment in payments:
            self.stdout.write(f"{payment.id} ({payment.tenant.slug}): {payment_reconcile(payment=payment)}")
        self.stdout.write(f"{len(payments)} payment(s) checked")
