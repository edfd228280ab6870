from __future__ import annotations

from django.urls import path

from apps.billing.checkout_api import BillingCheckoutView, BillingPortalView, BillingWebhookView

urlpatterns = [
    path("billing/checkout", BillingCheckoutView.as_view(), name="billing-checkout"),
    path("billing/portal", BillingPortalView.as_view(), name="billing-portal"),
    path("billing/webhook", BillingWebhookView.as_view(), name="billing-webhook"),
]
