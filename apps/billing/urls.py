from __future__ import annotations

from django.urls import path

from apps.billing.checkout_api import BillingCheckoutView, BillingPortalView, BillingWebhookView
from apps.billing.usage_api import BillingView, UsageView

urlpatterns = [
    path("usage", UsageView.as_view(), name="usage"),
    path("billing", BillingView.as_view(), name="billing"),
    path("billing/checkout", BillingCheckoutView.as_view(), name="billing-checkout"),
    path("billing/portal", BillingPortalView.as_view(), name="billing-portal"),
    path("billing/webhook", BillingWebhookView.as_view(), name="billing-webhook"),
]
