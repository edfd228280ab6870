"""Thin views for /pay: authenticate → check scope → validate → one service → serialize."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import ApplicationError, NotFound, ValidationFailed
from apps.core.pagination import page_params, paginate
from apps.pay import services
from apps.pay.gateway import not_configured, payments_configured_for
from apps.pay.models import Payment, PaymentStatus
from apps.pay.rendering import DecimalJSONParser, ExactDecimalRenderer, payment_to_dict
from apps.pay.validation import idempotency_key_from, payment_request_validate
from apps.pay.webhooks import stripe_event_apply, verify_event, webhook_secret_for
from apps.tenants.access import Need
from apps.tenants.api import PublicView, SlopView, json_body
from apps.tenants.models import Tenant


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

    def post(self, request: Request) -> Response:
        if not payments_configured_for(self.tenant):
            raise not_configured()
        key = idempotency_key_from(request.headers)
        payment_request = payment_request_validate(tenant=self.tenant, body=json_body(request))
        return _answer(
            services.payment_create(tenant=self.tenant, request=payment_request, idempotency_key=key)
        )

    def get(self, request: Request) -> Response:
        cursor, limit = page_params(request.query_params)
        queryset = Payment.objects.for_tenant(self.tenant)
        status = request.query_params.get("status")
        if status:
            if status not in PaymentStatus.values:
                raise ValidationFailed({"status": [f"One of {', '.join(PaymentStatus.values)}."]})
            queryset = queryset.filter(status=status)
        page = paginate(queryset, cursor=cursor, limit=limit)
        return Response(
            {"payments": [payment_to_dict(p) for p in page.items], "next_cursor": page.next_cursor}
        )


class PaymentDetailView(PayBaseView):
    info_description = "A payment's current state (refreshed from Stripe while it is not final)"
    access = {"GET": Need("pay", "read")}

    def get(self, request: Request, payment_id: str) -> Response:
        return Response(payment_to_dict(services.payment_refresh(tenant=self.tenant, payment_id=payment_id)))


class PaymentRefundView(PayBaseView):
    info_description = "Refund a successful payment in full (extension; repeatable, refunds once)"
    access = {"POST": Need("pay", "execute")}

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

    def post(self, request: Request, tenant_slug: str | None = None) -> Response:
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
