"""The console's routes. Account pages (sign-in, sign-up, invitations) at /console/…, a team's pages
at /console/t/<team>/…; each section of the console adds its routes here."""

from __future__ import annotations

from django.urls import include, path

from apps.dashboard.views import account, agents, home, playground

app_name = "dashboard"

team_urls = [
    path("", home.TeamHome.as_view(), name="team"),
    # Playground and agents (dash-play)
    path("playground", playground.Playground.as_view(), name="playground"),
    path("playground/threads", playground.PlaygroundThreads.as_view(), name="playground-threads"),
    path("playground/ticket", playground.PlaygroundTicket.as_view(), name="playground-ticket"),
    path("agents", agents.AgentList.as_view(), name="agents"),
    path("agents/new", agents.AgentCreate.as_view(), name="agent-create"),
    path("agents/<slug:agent_id>/edit", agents.AgentEdit.as_view(), name="agent-edit"),
    path("agents/<slug:agent_id>/delete", agents.AgentDelete.as_view(), name="agent-delete"),
]

urlpatterns = [
    path("", home.Landing.as_view(), name="landing"),
    path("login", account.Login.as_view(), name="login"),
    path("logout", account.Logout.as_view(), name="logout"),
    path("t/<slug:team>/", include(team_urls)),
]
