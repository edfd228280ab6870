from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from slop_platform.metrics_view import MetricsView
from slop_platform.views import HealthzView, InfoView, ReadyzView

urlpatterns = [
    path("info", InfoView.as_view(), name="info"),
    path("healthz", HealthzView.as_view(), name="healthz"),
    path("readyz", ReadyzView.as_view(), name="readyz"),
    path("metrics", MetricsView.as_view(), name="metrics"),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("docs", SpectacularSwaggerView.as_view(url_name="openapi"), name="docs"),
    path("admin/", admin.site.urls),
    path("", RedirectView.as_view(url="/console/"), name="home"),  # people arrive at the console
    path("console/", include("apps.dashboard.urls")),
    path("", include("apps.pay.urls")),
    path("", include("apps.billing.urls")),
    path("", include("apps.tools.urls")),
    path("", include("apps.resources.urls")),
    path("", include("apps.chat.urls")),
    path("", include("apps.memory.urls")),
    path("", include("apps.agents.urls")),
    path("v1/", include("apps.facades.openai.urls")),  # the OpenAI API (PROTOCOL.md §13)
]

handler400 = "apps.core.views.bad_request"
handler403 = "apps.core.views.permission_denied"
handler404 = "apps.core.views.not_found"
handler500 = "apps.core.views.server_error"
