from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from apps.dashboard.teams import TeamPage, memberships_of


class Landing(LoginRequiredMixin, View):
    """/console/: the user's only team, or a list of their teams to choose from."""

    def get(self, request: HttpRequest) -> HttpResponse:
        memberships = memberships_of(request.user)
        if len(memberships) == 1:
            return redirect("dashboard:team", team=memberships[0].tenant.slug)
        context = {"memberships": memberships, "signup_open": settings.SLOP_SIGNUP_OPEN}
        return render(request, "dashboard/landing.html", context)


class TeamHome(TeamPage):
    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return render(request, "dashboard/team_home.html", self.team_context())
