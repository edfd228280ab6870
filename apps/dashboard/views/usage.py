"""The usage page (every role: members have usage.read) and what the overview shows of the period.

Every number comes from apps/billing/selectors.py, the same reads as GET /usage and GET /billing:
`usage_summary` (the ledger, grouped) and `billing_overview` (the period's counters against the
plan). The page carries its chart data as JSON (`json_script`), and the same numbers in a table
beside each chart.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat

from apps.billing.accounts import account_for, current_period
from apps.billing.models import UsageCounter
from apps.billing.selectors import billing_overview, usage_summary
from apps.billing.usage_api import MAX_DAYS
from apps.dashboard.teams import TeamPage
from apps.tenants.models import ApiKey, Tenant
from apps.tenants.scopes import Action

NO_KEY = "Console (no key)"
NO_MODEL = "(none)"

# What a plan includes, in the order the bars show them: (key of `included`/`used`, label, unit).
QUANTITIES = [
    ("tokens", "Tokens", "count"),
    ("tool_calls", "Tool calls", "count"),
    ("memory_items", "Memory items", "count"),
    ("resource_bytes", "Resource storage", "bytes"),
    ("api_keys", "API keys", "count"),
    ("members", "Members", "count"),
]
PERIOD_QUANTITIES = ("tokens", "tool_calls")  # what the billing period meters (the rest are counts now)


def amount_text(value: int | None, unit: str) -> str:
    if value is None:
        return "unlimited"
    return str(filesizeformat(value)) if unit == "bytes" else f"{value:,}"


def quota_bars(
    overview: dict[str, Any],
    keys: tuple[str, ...] | None = None,
    quantities: list[tuple[str, str, str]] = QUANTITIES,
) -> list[dict[str, Any]]:
    """What the plan includes against what was used, one bar each (with the numbers spelled out).
    A quantity the overview does not count yet is left out; an unlimited one has no bar."""
    bars = []
    for key, label, unit in quantities:
        if keys is not None and key not in keys:
            continue
        if key not in overview["used"] or key not in overview["included"]:
            continue
        used = int(overview["used"][key])
        limit = overview["included"][key]
        percent = min(100, round(100 * used / limit)) if limit else (100 if limit == 0 and used else 0)
        bars.append(
            {
                "key": key,
                "label": label,
                "used": used,
                "limit": limit,
                "used_text": amount_text(used, unit),
                "limit_text": amount_text(limit, unit),
                "percent": percent,
                "over": limit is not None and used > limit,
                "over_note": "",
                "near": limit is not None and limit > 0 and used / limit >= 0.8,
            }
        )
    return bars


def key_cap_bars(tenant: Tenant, period_start: date) -> list[dict[str, Any]]:
    """The team's live keys that have their own monthly token cap, each against what it used this
    billing period (its counter, the one the quota check reads)."""
    keys = list(
        ApiKey.objects.for_tenant(tenant)
        .filter(revoked_at=None, monthly_token_cap__isnull=False)
        .order_by("prefix")
        .values_list("pk", "prefix", "name", "monthly_token_cap")
    )
    counters = {
        counter.subject: counter.tokens
        for counter in UsageCounter.objects.for_tenant(tenant).filter(
            period_start=period_start, scope=UsageCounter.Scope.KEY, subject__in=[str(pk) for pk, *_ in keys]
        )
    }
    overview = {
        "used": {f"key-{prefix}": counters.get(str(pk), 0) for pk, prefix, _, _ in keys},
        "included": {f"key-{prefix}": cap for _, prefix, _, cap in keys},
    }
    labels = [(f"key-{prefix}", f"Key {prefix} ({name})", "count") for _, prefix, name, _ in keys]
    bars = quota_bars(overview, quantities=labels)
    for bar in bars:
        bar["over_note"] = "At its cap: the key's requests are refused until the period ends."
    return bars


class PeriodForm(forms.Form):
    """The period picker: the billing period so far, the last 30 days, or any days (from/to)."""

    PERIODS = [("period", "This billing period"), ("30d", "Last 30 days"), ("custom", "Custom")]
    FIELDS = {"period", "from", "to"}

    period = forms.ChoiceField(choices=PERIODS, required=False, label="Period")

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        # Named as GET /usage names them (Python keywords, so declared here).
        self.fields["from"] = forms.DateField(
            required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
        )
        self.fields["to"] = forms.DateField(
            required=False, label="To (included)", widget=forms.DateInput(attrs={"type": "date"})
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        unknown = sorted(set(self.data) - self.FIELDS)
        if unknown:
            raise forms.ValidationError(
                f"Unknown parameter {unknown[0]!r}: this page takes period, from and to"
            )
        today = datetime.now(UTC).date()
        dated = bool(self.data.get("from") or self.data.get("to"))
        period = data.get("period") or ("custom" if dated else "period")
        if period != "custom" and dated:
            raise forms.ValidationError(
                "From and to choose a custom period: leave out the period, or set it to custom"
            )
        start: date | None
        end: date
        if period == "period":
            start, end = current_period(account_for(self.tenant))[0].date(), today
        elif period == "30d":
            start, end = today - timedelta(days=29), today
        else:
            start, end = data.get("from"), data.get("to") or today
            if self.errors:
                return data
            if start is None:
                self.add_error("from", "Choose the first day of the period.")
                return data
            if end < start:
                self.add_error("to", "Must be on or after the first day.")
                return data
            if (end - start).days > MAX_DAYS:
                self.add_error("to", f"At most {MAX_DAYS} days after the first day.")
                return data
        data["period"], data["start"], data["end"] = period, start, end
        return data


def _days(start: date, end: date) -> list[str]:
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def usage_data(tenant: Tenant, start: date, end: date) -> dict[str, Any]:
    """The charts' data (and their tables'): tokens per day by model, requests and tool calls per
    key, from the ledger through `usage_summary`."""
    days = _days(start, end)
    by_model = usage_summary(tenant=tenant, start=start, end=end, group_by="model", per_day=True)
    tokens: dict[str, dict[str, int]] = {}
    for row in by_model:
        amount = row["input_tokens"] + row["output_tokens"]
        if amount:
            tokens.setdefault(row["group"] or NO_MODEL, {})[row["day"]] = amount
    models = sorted(tokens)
    series = [{"model": model, "tokens": [tokens[model].get(day, 0) for day in days]} for model in models]
    by_key = usage_summary(tenant=tenant, start=start, end=end, group_by="key")
    keys = [
        {
            "key": row["group"] or NO_KEY,
            "requests": row["requests"],
            "tool_calls": row["tool_calls"],
            "input_tokens": row["input_tokens"],
            "output_tokens": row["output_tokens"],
            "tokens": row["input_tokens"] + row["output_tokens"],
            "cost": row["cost"],
        }
        for row in sorted(by_key, key=lambda r: (r["group"] is None, r["group"] or ""))
    ]
    return {"from": start.isoformat(), "to": end.isoformat(), "days": days, "models": series, "keys": keys}


def token_table(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The tokens chart as rows: each day that used any, its tokens per model and in all."""
    rows = []
    for index, day in enumerate(data["days"]):
        counts = [series["tokens"][index] for series in data["models"]]
        if any(counts):
            rows.append({"day": day, "counts": counts, "total": sum(counts)})
    return rows


def require(page: TeamPage, area: str, permission: str) -> None:
    """The member's role must grant what GET /usage or /billing would need of a key (every role that
    opens the page does: this keeps the page and the scopes from drifting apart)."""
    if not page.principal.scopes.allows(Action(area, permission)):
        raise PermissionDenied(f"This page needs the {area}.{permission} scope")


class Usage(TeamPage):
    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        require(self, "usage", "read")
        form = PeriodForm(request.GET, tenant=self.team)
        if not form.is_valid():
            for name in ("from", "to"):
                if name in form.errors:  # the field names its error list, for screen readers
                    form.fields[name].widget.attrs["aria-describedby"] = f"{name}-errors"
            return render(
                request, "dashboard/usage/page.html", self.team_context(form=form, data=None), status=400
            )
        start, end, period = (form.cleaned_data[name] for name in ("start", "end", "period"))
        data = usage_data(self.team, start, end)
        overview = billing_overview(tenant=self.team)
        context = self.team_context(
            form=form,
            period=period,
            data=data,
            token_rows=token_table(data),
            total_tokens=sum(sum(series["tokens"]) for series in data["models"]),
            bars=quota_bars(overview, PERIOD_QUANTITIES),
            key_bars=key_cap_bars(self.team, current_period(account_for(self.team))[0].date()),
            overview=overview,
        )
        return render(request, "dashboard/usage/page.html", context)
