from __future__ import annotations

from django.urls import path

from apps.pay.api import PaymentDetailView, PaymentRefundView, PayView, StripeWebhookView

urlpatterns = [
    path("pay", PayView.as_view(), name="pay"),
    path("pay/webhook", StripeWebhookView.as_view(), name="pay-webhook"),
    path("pay/webhook/<slug:tenant_slug>", StripeWebhookView.as_view(), name="pay-webhook-tenant"),
    path("pay/<str:payment_id>", PaymentDetailView.as_view(), name="pay-detail"),
    path("pay/<str:payment_id>/refund", PaymentRefundView.as_view(), name="pay-refund"),
]
