"""`manage.py billing_report`: send the usage ledger to Stripe Billing now (what the beat task
does); `--create-meters` first makes the Stripe meters it reports to, `--reconcile` then compares
what was sent with Stripe's meter event summaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.billing.models import UsageEvent
from apps.billing.reporting import (
    StripeNotConfigured,
    ensure_meters,
    reconcile,
    report_usage,
    stripe_client,
)


def _day(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise CommandError(f"Not a date (YYYY-MM-DD): {value!r}") from None


class Command(BaseCommand):
    help = "Report metered usage to Stripe Billing (meter events), retrying whatever is still pending."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--create-meters", action="store_true", help="make missing Stripe meters first")
        parser.add_argument("--reconcile", action="store_true", help="compare with Stripe's summaries")
        parser.add_argument("--from", dest="start", help="reconcile from this day (default: 30 days ago)")
        parser.add_argument("--to", dest="end", help="reconcile up to this day, inclusive (default: today)")

    def handle(self, *args: Any, **options: Any) -> None:
        differences: list[Any] = []
        try:
            client = stripe_client()
        except StripeNotConfigured as exc:
            waiting = UsageEvent.objects.unscoped().filter(report__isnull=True).count()
            raise CommandError(f"{exc} ({waiting} ledger row(s) not yet reported)") from None
        try:
            if options["create_meters"]:
                for name, meter_id in ensure_meters(client).items():
                    self.stdout.write(f"meter {name}: {meter_id}")
            result = report_usage(client)
        except stripe.StripeError as exc:
            raise CommandError(f"Stripe refused: {exc.user_message or exc}") from None
        self.stdout.write(
            f"{result.sent} meter event(s) sent, {result.already_counted} already counted by Stripe, "
            f"{result.pending} batch(es) still to send"
        )
        for identifier, why in result.failed.items():
            self.stderr.write(f"not sent: {identifier}: {why}")
        if result.stopped:
            self.stderr.write(f"stopped: {result.stopped} (the backlog is kept for the next run)")
        if options["reconcile"]:
            today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
            start = _day(options["start"]) if options["start"] else today - timedelta(days=30)
            end = (_day(options["end"]) if options["end"] else today) + timedelta(days=1)
            try:
                differences = reconcile(client, start=start, end=min(end, timezone.now()))
            except stripe.StripeError as exc:
                raise CommandError(f"Stripe refused: {exc.user_message or exc}") from None
            for d in differences:
                self.stdout.write(
                    f"mismatch: tenant {d.tenant_id} ({d.customer}) {d.unit}: "
                    f"sent {d.ours}, Stripe counted {d.stripes}"
                )
            if not differences:
                self.stdout.write("reconciled: no differences")
        if result.stopped or result.failed:
            raise CommandError("some usage could not be reported yet; run again later")
        if options["reconcile"] and differences:
            raise CommandError(
                f"{len(differences)} difference(s) between what was sent and what Stripe counted"
            )
