"""The console's navigation: each section, the least role that sees it. A section whose route does
not exist is not shown, so the list can name what the console has, in order."""

from __future__ import annotations

from typing import Any, NamedTuple

from django.urls import NoReverseMatch, reverse

from apps.tenants.models import Membership
from apps.tenants.roles import Role, at_least


class Section(NamedTuple):
    label: str
    route: str  # a route of apps/dashboard/urls.py that takes the team
    role: str


SECTIONS = [
    Section("Overview", "dashboard:team", Role.MEMBER),
    Section("Playground", "dashboard:playground", Role.MEMBER),
    Section("API keys", "dashboard:keys", Role.ADMIN),
    Section("Memory", "dashboard:memory", Role.MEMBER),
    Section("Resources", "dashboard:resources", Role.MEMBER),
    Section("Tools & jobs", "dashboard:tools", Role.MEMBER),
    Section("Agents", "dashboard:agents", Role.MEMBER),
    Section("Usage", "dashboard:usage", Role.MEMBER),
    Section("Billing", "dashboard:billing", Role.OWNER),
    Section("Members", "dashboard:members", Role.OWNER),
]


def sections_for(membership: Membership, current_path: str) -> list[dict[str, Any]]:
    shown = []
    for section in SECTIONS:
        if not at_least(membership, section.role):
            continue
        try:
            url = reverse(section.route, kwargs={"team": membership.tenant.slug})
        except NoReverseMatch:
            continue
        current = current_path == url if section.route == "dashboard:team" else current_path.startswith(url)
        shown.append({"label": section.label, "url": url, "current": current})
    return shown
