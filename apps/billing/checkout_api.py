"""Subscribing and managing a team's plan: Checkout (`POST /billing/checkout`), the Customer Portal
(`POST /billing/portal`), and Stripe's billing webhook (`POST /billing/webhook`). Thin views:
the declared access check, validate, one service, serialize."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.billing.subscriptions import billing_checkout_create, billing_portal_create
from apps.billing.webhooks import billing_event_apply, verify_event
from apps.core.openapi import error_responses
from apps.core.serializers import StrictCharField, validated
from apps.tenants.access import Need
from apps.tenants.api import PublicView, SlopView, json_body

STRIPE_SIGNATURE = OpenApiParameter(
    "Stripe-Signature", str, OpenApiParameter.HEADER, required=True, description="Stripe's event signature"
)


class CheckoutRequestSerializer(serializers.Serializer):
    plan = StrictCharField(max_length=40, help_text="The plan to subscribe to (e.g. pro, team)")


class SessionUrlSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="Send the team's browser here (a Stripe-hosted page)")


class BillingWebhookReceiptSerializer(serializers.Serializer):
    received = serializers.BooleanField()
    event = serializers.CharField()
    outcome = serializers.CharField()


class BillingCheckoutView(SlopView):
    info_description = "Start a Stripe Checkout Session for a plan; answers its URL"
    access = {"POST": Need("billing", "write")}

    @extend_schema(
        request=CheckoutRequestSerializer,
        responses={200: SessionUrlSerializer, **error_responses(409, 502, 503, 504)},
    )
    def post(self, request: Request) -> Response:
        """A Stripe Checkout Session (a monthly subscription) for a paid plan: send the browser to
        `url`. The plan changes when Stripe's webhook says the subscription is paid. 400 for an
        unknown plan or the free one, 409 when the team already has a subscription (change it in
        the portal), 503 billing_not_configured naming the setting that is missing."""
        body = validated(CheckoutRequestSerializer, request.data)
        return Response({"url": billing_checkout_create(tenant=self.tenant, plan_slug=body["plan"])})


class BillingPortalView(SlopView):
    info_description = (
        "A Stripe Customer Portal session: invoices, payment method, plan changes, cancellation"
    )
    access = {"POST": Need("billing", "write")}

    @extend_schema(request=None, responses={200: SessionUrlSerializer, **error_responses(502, 503, 504)})
    def post(self, request: Request) -> Response:
        """A Stripe Customer Portal session for the team: send the browser to `url`. 503
        billing_not_configured naming the setting that is missing."""
        if request.body:
            json_body(request)  # an optional body must still be a JSON object
        return Response({"url": billing_portal_create(tenant=self.tenant)})


class BillingWebhookView(PublicView):
    """Called by Stripe, not by API clients: the signature is the credential."""

    dangerously_unchecked = "Stripe calls it with no key; the Stripe-Signature header is checked"

    authentication_classes: list[Any] = []
    parser_classes: list[Any] = []  # the exact bytes are what Stripe signed

    @extend_schema(
        request={
            "application/json": {"type": "object", "description": "A Stripe event, as Stripe signed it"}
        },
        parameters=[STRIPE_SIGNATURE],
        responses={200: BillingWebhookReceiptSerializer, **error_responses(503)},
    )
    def post(self, request: Request) -> Response:
        """Stripe's subscription and invoice events for team billing (signed with
        STRIPE_BILLING_WEBHOOK_SECRET): each is applied once, in whatever order they arrive."""
        event = verify_event(payload=request.body, signature=request.headers.get("Stripe-Signature"))
        outcome = billing_event_apply(event=event)
        return Response({"received": True, "event": event["id"], "outcome": outcome})
