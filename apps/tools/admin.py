"""Operators' admin for tools and jobs: every list is filtered by team (tenant).

Webhook tools are created and edited here with their JSON Schema (checked when saved); a new tool
gets a signing secret, shown once in the confirmation message, and the "rotate signing secret"
action makes a new one. Each tool shows its recent jobs with their status and errors.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from apps.core.admin import OperatorAdmin
from apps.core.errors import ApplicationError
from apps.core.http import outbound_url_problem
from apps.tools.builtins import BUILTINS
from apps.tools.jobs import tool_job_cancel
from apps.tools.models import Tool, ToolJob
from apps.tools.schemas import SchemaProblem, check_schema
from apps.tools.selectors import tool_jobs_recent
from apps.tools.services import tool_id_problem, tool_signing_secret_rotate
from apps.tools.webhooks import new_signing_secret


class ToolForm(forms.ModelForm):
    webhook_url = forms.URLField(max_length=2000, required=False, assume_scheme="https")

    class Meta:
        model = Tool
        fields = [
            "tenant",
            "slug",
            "kind",
            "description",
            "schema",
            "example",
            "safe",
            "long_running",
            "timeout_seconds",
            "enabled",
            "webhook_url",
        ]

    def _get_validation_exclusions(self) -> set[str]:
        # The (tenant, slug) constraint is checked per team in validate_unique below: Django's own
        # check goes through the default manager, which refuses queries not scoped to a tenant.
        return set(super()._get_validation_exclusions()) | {"slug"}  # type: ignore[misc]

    def validate_unique(self) -> None:
        # Django's own check queries the default manager, which refuses unscoped queries; the
        # uniqueness that matters is per team, so check it within the team.
        tenant = self.cleaned_data.get("tenant")
        slug = self.cleaned_data.get("slug")
        if tenant is None or not slug:
            return
        clash = Tool.objects.for_tenant(tenant).filter(slug=slug).exclude(pk=self.instance.pk).exists()
        if clash:
            self.add_error("slug", f"{tenant} already has a tool called {slug}")

    def clean_slug(self) -> str:
        slug = str(self.cleaned_data["slug"])
        if self.cleaned_data.get("kind", Tool.Kind.WEBHOOK) == Tool.Kind.WEBHOOK or slug not in BUILTINS:
            problem = tool_id_problem(slug)
            if problem:
                raise forms.ValidationError(problem)
        return slug

    def clean_schema(self) -> dict[str, Any]:
        schema = self.cleaned_data.get("schema") or {"type": "object", "properties": {}}
        try:
            return check_schema(schema)
        except SchemaProblem as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        kind = cleaned.get("kind")
        slug = cleaned.get("slug")
        if kind == Tool.Kind.BUILTIN and slug not in BUILTINS:
            self.add_error("kind", f"Built-in tools are: {', '.join(BUILTINS)}")
        if kind == Tool.Kind.WEBHOOK:
            if slug in BUILTINS:
                self.add_error("slug", f"{slug} is a built-in tool; choose another id")
            url = cleaned.get("webhook_url") or ""
            problem = outbound_url_problem(url) if url else "a webhook tool needs a URL"
            if problem:
                self.add_error("webhook_url", problem)
        return cleaned


@admin.register(Tool)
class ToolAdmin(OperatorAdmin):
    form = ToolForm
    list_display = ["slug", "tenant", "kind", "safe", "long_running", "enabled", "updated_at"]
    list_filter = ["tenant", "kind", "safe", "long_running", "enabled"]
    search_fields = ["slug", "description", "tenant__slug"]
    readonly_fields = ["recent_jobs", "created_at", "updated_at"]
    actions = ["rotate_signing_secret"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tool]:
        return super().get_queryset(request).select_related("tenant").defer("signing_secret")

    def save_model(self, request: HttpRequest, obj: Tool, form: Any, change: bool) -> None:
        new_secret = None
        if obj.kind == Tool.Kind.WEBHOOK and not change:
            new_secret = new_signing_secret()
            obj.signing_secret = new_secret
        super().save_model(request, obj, form, change)
        if new_secret:
            messages.warning(request, f"Signing secret for {obj.slug} (shown once): {new_secret}")

    @admin.display(description="Recent jobs")
    def recent_jobs(self, obj: Tool) -> str:
        if obj.pk is None:
            return "-"
        jobs = tool_jobs_recent(tenant=obj.tenant_id, tool_id=obj.slug, limit=20)
        if not jobs:
            return "No jobs yet"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((job.public_id, job.status, job.attempts, job.error or "", job.created_at) for job in jobs),
        )
        return format_html(
            "<table><tr><th>job</th><th>status</th><th>attempts</th><th>error</th><th>created</th></tr>{}</table>",
            rows,
        )

    @admin.action(description="Rotate the signing secret")
    def rotate_signing_secret(self, request: HttpRequest, queryset: QuerySet[Tool]) -> None:
        for tool in Tool.objects.unscoped().filter(pk__in=queryset.values("pk"), kind=Tool.Kind.WEBHOOK):
            secret = tool_signing_secret_rotate(tool=tool)
            label = f"{tool.tenant}/{tool.slug}"
            messages.warning(request, f"New signing secret for {label} (shown once): {secret}")


@admin.register(ToolJob)
class ToolJobAdmin(OperatorAdmin):
    list_display = [
        "public_id",
        "tenant",
        "tool_slug",
        "status",
        "attempts",
        "error",
        "created_at",
        "finished_at",
    ]
    list_filter = ["tenant", "status", "tool_slug"]
    search_fields = ["public_id", "tool_slug", "call_id", "tenant__slug"]
    readonly_fields = [field.name for field in ToolJob._meta.fields]
    actions = ["cancel"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ToolJob]:
        return super().get_queryset(request).select_related("tenant")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Cancel the selected jobs")
    def cancel(self, request: HttpRequest, queryset: QuerySet[ToolJob]) -> None:
        for job in queryset:
            try:
                tool_job_cancel(job=job)
            except ApplicationError as exc:
                messages.error(request, exc.message)
