from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.dateparse import parse_datetime
from django.views import View

from apps.billing.accounts import account_for
from apps.billing.selectors import billing_overview
from apps.dashboard.teams import TeamPage, memberships_of
from apps.dashboard.views.usage import quota_bars


class Landing(LoginRequiredMixin, View):
    """/console/: the user's only team, or a list of their teams to choose from."""

    def get(self, request: HttpRequest) -> HttpResponse:
        memberships = memberships_of(request.user)
        if len(memberships) == 1:
            return redirect("dashboard:team", team=memberships[0].tenant.slug)
        context = {"memberships": memberships, "signup_open": settings.SLOP_SIGNUP_OPEN}
        return render(request, "dashboard/landing.html", context)


# What each section's quick link says (a section shows once its route exists: apps/dashboard/nav.py).
LINK_HELP = {
    "Playground": "Chat with the team's models and agents.",
    "API keys": "Create, scope and revoke the team's keys.",
    "Memory": "Browse and search what the team remembers.",
    "Resources": "Documents the team's agents can search.",
    "Tools & jobs": "Built-in and webhook tools, and their jobs.",
    "Agents": "The team's agents and how they hand over.",
    "Usage": "Tokens per day by model, requests per key.",
    "Billing": "Plan, invoices and upgrades.",
    "Members": "Who is in the team, and invitations.",
}


class TeamHome(TeamPage):
    """The overview: the plan and its period, usage against what the plan includes (GET /billing's
    numbers, billing_overview), and a link to each section this member may open."""

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        overview = billing_overview(tenant=self.team)
        context = self.team_context()
        links = [
            {**section, "help": LINK_HELP.get(section["label"], "")}
            for section in context["sections"]
            if section["label"] != "Overview"
        ]
        used = overview["used"]
        context.update(
            overview=overview,
            period_start=parse_datetime(overview["period_start"]),
            period_end=parse_datetime(overview["period_end"]),
            bars=quota_bars(overview),
            links=links,
            playground_url=next((s["url"] for s in links if s["label"] == "Playground"), None),
            keys_url=next((s["url"] for s in links if s["label"] == "API keys"), None),
            no_usage=not (used["tokens"] or used["tool_calls"] or used["job_seconds"]),
            no_keys=not used["api_keys"],
            account=account_for(self.team),
        )
        return render(request, "dashboard/team_home.html", context)
