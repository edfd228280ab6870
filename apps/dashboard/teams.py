"""The team a console page is about, and who may open it.

Every team page lives under /console/t/<slug>/. `TeamPage` resolves the slug among the signed-in
user's own memberships only (`Membership.objects.unscoped()` filtered by user: the one place the
console crosses tenants), so a team the user is not in is a 404, never a 403 that would confirm
it exists. The page then has `self.team`, `self.membership` and `self.principal` (the services'
caller: the role's scopes), and every query it makes goes through `Model.objects.for_tenant(team)`.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponseBase
from django.views import View

from apps.dashboard.nav import sections_for
from apps.tenants.authentication import Principal
from apps.tenants.models import Membership, Tenant
from apps.tenants.roles import RANK, Role, at_least, console_principal


def memberships_of(user: Any) -> list[Membership]:
    """The user's teams, for the switcher: across tenants by design (the user's own rows only)."""
    if not user.is_authenticated:
        return []
    return list(
        Membership.objects.unscoped().filter(user=user).select_related("tenant").order_by("tenant__name")
    )


def membership_for(user: Any, slug: str) -> Membership:
    membership = (
        Membership.objects.unscoped().filter(user=user, tenant__slug=slug).select_related("tenant").first()
    )
    if membership is None:
        raise Http404("No such team")
    return membership


class TeamPage(LoginRequiredMixin, View):
    """A page of one team. `role`: the least role that may open it (enforced for every method)."""

    role: str = Role.MEMBER
    team: Tenant
    membership: Membership
    principal: Principal

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.membership = membership_for(request.user, kwargs.pop("team"))
        self.team = self.membership.tenant
        if not at_least(self.membership, self.role):
            raise PermissionDenied(f"This page needs the {self.role} role")
        self.principal = console_principal(self.membership)
        return super().dispatch(request, *args, **kwargs)

    def can(self, role: str) -> bool:
        """For templates and forms: whether this member's role reaches `role`."""
        return at_least(self.membership, role)

    def team_context(self, **extra: Any) -> dict[str, Any]:
        """What base.html needs (the team, the role, the switcher), plus the page's own context."""
        return {
            "team": self.team,
            "membership": self.membership,
            "is_admin": RANK[Role(self.membership.role)] >= RANK[Role.ADMIN],
            "is_owner": self.membership.role == Role.OWNER,
            "memberships": memberships_of(self.request.user),
            "sections": sections_for(self.membership, self.request.path),
            **extra,
        }
