"""Thin views for /pay: authenticate → check scope → validate → one service → serialize."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import ApplicationError, NotFound
from apps.core.openapi import error_responses
from apps.core.pagination import paginate
from apps.core.serializers import page_query
from apps.pay import services
from apps.pay.gateway import not_configured, payments_configured_for
from apps.pay.models import Payment, PaymentStatus
from apps.pay.rendering import DecimalJSONParser, ExactDecimalRenderer, payment_to_dict
from apps.pay.serializers import (
    PaymentCreateSerializer,
    PaymentFailedSerializer,
    PaymentListQuerySerializer,
    PaymentListSerializer,
    PaymentSerializer,
    WebhookReceiptSerializer,
)
from apps.pay.validation import idempotency_key_from, payment_request_validate
from apps.pay.webhooks import stripe_event_apply, verify_event, webhook_secret_for
from apps.tenants.access import Need
from apps.tenants.api import PublicView, SlopView, json_body
from apps.tenants.models import Tenant

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False, description="1-255 printable ASCII"
)
STRIPE_SIGNATURE = OpenApiParameter(
    "Stripe-Signature", str, OpenApiParameter.HEADER, required=True, description="Stripe's event signature"
)


class PayBaseView(SlopView):
    parser_classes = [DecimalJSONParser]
    renderer_classes = [ExactDecimalRenderer]


def _answer(outcome: services.PaymentOutcome) -> Response:
    payment = outcome.payment
    body = payment_to_dict(payment)
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    if outcome.upstream_error is not None:
        error = outcome.upstream_error
        raise ApplicationError(
            f"{error}. The payment {payment.id} is stored as pending and will be reconciled; retry "
            "with the same Idempotency-Key to get its outcome",
            code=error.code,
            status=error.status,
            extra={"transaction_id": payment.id, "payment": body},
            headers=headers,
        )
    if payment.status == PaymentStatus.FAILED:
        body.update({"error": payment.failure_reason, "code": "payment_failed"})
        return Response(body, status=402, headers=headers)
    return Response(body, status=200, headers=headers)


class PayView(PayBaseView):
    info_description = (
        "POST: charge a payment method through Stripe (Idempotency-Key supported); GET: list payments"
    )
    access = {"POST": Need("pay", "execute"), "GET": Need("pay", "read")}

    @extend_schema(
        request=PaymentCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            200: PaymentSerializer,
            402: OpenApiResponse(PaymentFailedSerializer, description="The charge was declined"),
            **error_responses(409, 502, 503, 504),
        },
    )
    def post(self, request: Request) -> Response:
        """Charge a payment method through Stripe. The same Idempotency-Key with the same body
        answers the first outcome (Idempotent-Replayed: true) and never charges twice; with
        another body it is a 409. 503 when the team has not configured Stripe."""
        if not payments_configured_for(self.tenant):
            raise not_configured()
        key = idempotency_key_from(request.headers)
        payment_request = payment_request_validate(tenant=self.tenant, body=request.data)
        return _answer(
            services.payment_create(tenant=self.tenant, request=payment_request, idempotency_key=key)
        )

    @extend_schema(parameters=[PaymentListQuerySerializer], responses={200: PaymentListSerializer})
    def get(self, request: Request) -> Response:
        """The team's payments, newest first; ?status= filters."""
        query = page_query(request.query_params, PaymentListQuerySerializer)
        queryset = Payment.objects.for_tenant(self.tenant)
        if query.get("status"):
            queryset = queryset.filter(status=query["status"])
        page = paginate(queryset, cursor=query["cursor"], limit=query["limit"])
        return Response(
            {"payments": [payment_to_dict(p) for p in page.items], "next_cursor": page.next_cursor}
        )


class PaymentDetailView(PayBaseView):
    info_description = "A payment's current state (refreshed from Stripe while it is not final)"
    access = {"GET": Need("pay", "read")}

    @extend_schema(responses={200: PaymentSerializer, **error_responses(502, 503, 504)})
    def get(self, request: Request, payment_id: str) -> Response:
        return Response(payment_to_dict(services.payment_refresh(tenant=self.tenant, payment_id=payment_id)))


class PaymentRefundView(PayBaseView):
    info_description = "Refund a successful payment in full (extension; repeatable, refunds once)"
    access = {"POST": Need("pay", "execute")}

    @extend_schema(request=None, responses={200: PaymentSerializer, **error_responses(409, 502, 503, 504)})
    def post(self, request: Request, payment_id: str) -> Response:
        if request.body:
            json_body(request)  # an optional body must still be a JSON object
        return Response(payment_to_dict(services.payment_refund(tenant=self.tenant, payment_id=payment_id)))


class StripeWebhookView(PublicView):
    """Called by Stripe, not by API clients: the signature is the credential."""

    dangerously_unchecked = "Stripe calls it with no key; the Stripe-Signature header is checked"

    authentication_classes: list[Any] = []
    parser_classes: list[Any] = []  # the exact bytes are what Stripe signed

    def tenant_for(self, tenant_slug: str | None) -> Tenant | None:
        if tenant_slug is None:
            return None
        tenant = Tenant.objects.filter(slug=tenant_slug, is_active=True).first()
        if tenant is None:
            raise NotFound("No such webhook endpoint")
        return tenant

    @extend_schema(
        request={
            "application/json": {"type": "object", "description": "A Stripe event, as Stripe signed it"}
        },
        parameters=[STRIPE_SIGNATURE],
        responses={200: WebhookReceiptSerializer, **error_responses(404, 503)},
    )
    def post(self, request: Request, tenant_slug: str | None = None) -> Response:
        """Stripe's notifications (the signature is the credential): each event is applied once.
        /pay/webhook/{tenant_slug} is a team's own Stripe account's endpoint."""
        tenant = self.tenant_for(tenant_slug)
        secret = webhook_secret_for(tenant)
        if tenant is not None and not secret:
            # Same answer as an unknown slug: the endpoint does not reveal which teams exist.
            raise NotFound("No such webhook endpoint")
        event = verify_event(
            payload=request.body, signature=request.headers.get("Stripe-Signature"), secret=secret
        )
        outcome = stripe_event_apply(event=event, tenant=tenant)
        return Response({"received": True, "event": event["id"], "outcome": outcome})
