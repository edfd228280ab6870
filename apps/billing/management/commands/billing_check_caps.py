"""`manage.py billing_check_caps [--repair] [slug ...]`: compare the plan caps' counters
(CapCounter, kept by triggers) with a count of each team's rows, and with --repair set them to it.
A safety net, not the mechanism: a counter only drifts if someone edits it (or disables the
triggers) by hand."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.billing.caps import cap_counters_check
from apps.tenants.models import Tenant


class Command(BaseCommand):
    help = "Check the plan caps' counters against the rows they count; --repair fixes them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slugs", nargs="*", help="teams to check (default: all)")
        parser.add_argument("--repair", action="store_true", help="set wrong counters to the count")

    def handle(self, *args: Any, **options: Any) -> None:
        tenants = Tenant.objects.order_by("pk")
        if options["slugs"]:
            tenants = tenants.filter(slug__in=options["slugs"])
            missing = set(options["slugs"]) - set(tenants.values_list("slug", flat=True))
            if missing:
                raise CommandError(f"No such team: {', '.join(sorted(missing))}")
        wrong_teams = 0
        for tenant in tenants.iterator():
            wrong = cap_counters_check(tenant, repair=options["repair"])
            for what, (kept, counted) in wrong.items():
                action = "repaired" if options["repair"] else "wrong"
                self.stdout.write(f"{tenant.slug} {what}: counter {kept}, counted {counted} ({action})")
            wrong_teams += bool(wrong)
        if wrong_teams and not options["repair"]:
            raise CommandError(f"{wrong_teams} team(s) with wrong cap counters: run with --repair")
        done = f"Repaired {wrong_teams} team(s)." if wrong_teams else "Cap counters: all right."
        self.stdout.write(done)
