from __future__ import annotations

from django.urls import path

from apps.agents.api import AgentDetailView, AgentListView

urlpatterns = [
    path("agents", AgentListView.as_view(), name="agents"),
    path("agents/<str:agent_id>", AgentDetailView.as_view(), name="agent"),
]
