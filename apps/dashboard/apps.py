from __future__ import annotations

from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The team console at /console/: pages for a team's members, over the same services as the
    SLOP endpoints, acting with the member's role (apps/tenants/roles.py)."""

    name = "apps.dashboard"
    label = "dashboard"
    verbose_name = "Team console"
