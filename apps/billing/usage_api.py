"""`GET /usage` (the team's metered usage, grouped) and `GET /billing` (its plan, period, included vs
used, the next invoice estimate): PROTOCOL.md §12. Thin views over apps/billing/selectors.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.billing.accounts import account_for, current_period
from apps.billing.selectors import GROUPS, billing_overview, usage_summary
from apps.core.errors import ApplicationError, ValidationFailed
from apps.core.serializers import validated_query
from apps.tenants.access import Need
from apps.tenants.api import SlopView

MAX_DAYS = 366


class UsageSummaryQuerySerializer(serializers.Serializer):
    # Named `from`/`to` on the wire (Python keywords): see the fields below.
    group_by = serializers.ChoiceField(choices=GROUPS, required=False, help_text="Default: day")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = serializers.DateField(
            required=False, help_text="First day (UTC, YYYY-MM-DD); default: the period's first day"
        )
        fields["to"] = serializers.DateField(required=False, help_text="Last day, included; default: today")
        return fields


class UsageSummaryRowSerializer(serializers.Serializer):
    group = serializers.CharField(
        allow_null=True, help_text="The day, model, key prefix, end user or agent (null: none named)"
    )
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    tool_calls = serializers.IntegerField()
    job_seconds = serializers.IntegerField()
    requests = serializers.IntegerField(help_text="Billable operations (exchanges, tool calls, jobs)")
    cost = serializers.CharField(help_text="At the plan's unit prices, in its currency (decimal string)")


class UsageSummarySerializer(serializers.Serializer):
    usage = UsageSummaryRowSerializer(many=True)
    group_by = serializers.ChoiceField(choices=GROUPS)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = serializers.DateField()
        fields["to"] = serializers.DateField()
        return fields


class BillingIncludedSerializer(serializers.Serializer):
    tokens = serializers.IntegerField(allow_null=True, help_text="null: unlimited")
    tool_calls = serializers.IntegerField(allow_null=True)
    memory_items = serializers.IntegerField(allow_null=True)
    resource_bytes = serializers.IntegerField(allow_null=True)
    api_keys = serializers.IntegerField(allow_null=True)
    members = serializers.IntegerField(allow_null=True)


class BillingUsedSerializer(serializers.Serializer):
    tokens = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    tool_calls = serializers.IntegerField()
    job_seconds = serializers.IntegerField()
    memory_items = serializers.IntegerField(help_text="Memory keys the team keeps now")
    resource_bytes = serializers.IntegerField(help_text="UTF-8 bytes of resource content stored now")
    api_keys = serializers.IntegerField(help_text="Active keys (neither revoked nor expired)")
    members = serializers.IntegerField()


class InvoiceEstimateLineSerializer(serializers.Serializer):
    item = serializers.CharField()
    quantity = serializers.IntegerField()
    amount = serializers.CharField()


class InvoiceEstimateSerializer(serializers.Serializer):
    date = serializers.DateTimeField()
    currency = serializers.CharField()
    amount = serializers.CharField(help_text="Decimal string, in the currency's major unit")
    lines = InvoiceEstimateLineSerializer(many=True)


class BillingSerializer(serializers.Serializer):
    plan = serializers.CharField()
    plan_name = serializers.CharField()
    status = serializers.CharField()
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    overage_allowed = serializers.BooleanField()
    included = BillingIncludedSerializer()
    used = BillingUsedSerializer()
    next_invoice = InvoiceEstimateSerializer()


def _range(view: SlopView, query: dict[str, date]) -> tuple[date, date]:
    today = datetime.now(UTC).date()
    start = query.get("from")
    if start is None:
        start = current_period(account_for(view.tenant))[0].date()
    end = query.get("to") or today
    if end < start:
        raise ValidationFailed({"to": ["Must be on or after `from`."]})
    if end - start > timedelta(days=MAX_DAYS):
        raise ValidationFailed({"to": [f"At most {MAX_DAYS} days after `from`."]})
    return start, end


class UsageView(SlopView):
    info_description = (
        "The team's metered usage (tokens, tool calls) grouped by day, model, key, user or agent"
    )
    access = {"GET": Need("usage", "read")}

    @extend_schema(parameters=[UsageSummaryQuerySerializer], responses={200: UsageSummarySerializer})
    def get(self, request: Request) -> Response:
        """`?from=YYYY-MM-DD&to=YYYY-MM-DD&group_by=day|model|key|user|agent`: what the team's
        requests used, one row per group (days in UTC; `to` included), with its cost at the plan's
        unit prices. `user` groups by X-SLOP-User, `key` by the API key's prefix."""
        unknown = sorted(set(request.query_params) - {"from", "to", "group_by"})
        if unknown:
            raise ApplicationError(
                f"Unknown query parameter {unknown[0]!r}: /usage takes from, to and group_by",
                code="invalid_request",
            )
        query = validated_query(UsageSummaryQuerySerializer, request.query_params)
        start, end = _range(self, query)
        group_by = query.get("group_by") or "day"
        rows = usage_summary(tenant=self.tenant, start=start, end=end, group_by=group_by)
        return Response(
            {"usage": rows, "from": start.isoformat(), "to": end.isoformat(), "group_by": group_by}
        )


class BillingView(SlopView):
    info_description = "The team's plan, billing period, included vs used, and the next invoice estimate"
    access = {"GET": Need("billing", "read")}

    @extend_schema(responses={200: BillingSerializer})
    def get(self, request: Request) -> Response:
        """The plan (`free` until the team subscribes), its status (from Stripe's webhooks), the
        current period, what the plan includes (null: unlimited) against what was used this period,
        and the next invoice at this rate. Subscribe with POST /billing/checkout."""
        return Response(billing_overview(tenant=self.tenant))
