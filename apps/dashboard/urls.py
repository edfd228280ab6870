"""The console's routes. Account pages (sign-in, sign-up, invitations) at /console/…, a team's pages
at /console/t/<team>/…; each section of the console adds its routes here."""

from __future__ import annotations

from django.urls import include, path

from apps.dashboard.views import account, billing, home, usage

app_name = "dashboard"

team_urls = [
    path("", home.TeamHome.as_view(), name="team"),
    # usage and billing (dash-usage)
    path("usage/", usage.Usage.as_view(), name="usage"),
    path("billing/", billing.Billing.as_view(), name="billing"),
    path("billing/checkout", billing.Checkout.as_view(), name="billing-checkout"),
    path("billing/portal", billing.Portal.as_view(), name="billing-portal"),
]

urlpatterns = [
    path("", home.Landing.as_view(), name="landing"),
    path("login", account.Login.as_view(), name="login"),
    path("logout", account.Logout.as_view(), name="logout"),
    path("t/<slug:team>/", include(team_urls)),
]
