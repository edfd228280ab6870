from __future__ import annotations

from django.urls import path

from apps.tools.api import ToolDetailView, ToolJobListView, ToolJobView, ToolListView
from apps.tools.stream import ToolJobStreamView

urlpatterns = [
    path("tools", ToolListView.as_view(), name="tools"),
    path("tools/jobs", ToolJobListView.as_view(), name="tool-jobs"),
    path("tools/jobs/<str:job_id>/stream", ToolJobStreamView.as_view(), name="tool-job-stream"),
    path("tools/jobs/<str:job_id>", ToolJobView.as_view(), name="tool-job"),
    path("tools/<str:tool_id>", ToolDetailView.as_view(), name="tool"),
]
