"""Operators' admin for agents: listed and filtered by team, created and edited with the same rules
as the API (the id's pattern; tools, model and handoffs of the agent's own team), and never deleted
while another agent hands off to it (the delete page lists those agents as protected)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from rest_framework import serializers

from apps.agents.models import Agent
from apps.agents.selectors import agents_handing_off_to
from apps.agents.serializers import AgentToolsField, HandoffsField
from apps.agents.services import agent_reference_problems
from apps.core.admin import OperatorAdmin
from apps.tenants.models import Tenant


def _shape(field: serializers.Field, value: Any) -> Any:
    try:
        return field.run_validation(value)
    except serializers.ValidationError as exc:
        detail = exc.detail
        messages = detail if isinstance(detail, list) else [str(detail)]
        raise forms.ValidationError([str(message) for message in messages]) from None


class AgentAdminForm(forms.ModelForm):
    class Meta:
        model = Agent
        fields = [
            "tenant",
            "slug",
            "name",
            "description",
            "model",
            "instructions",
            "tools",
            "memory_prefix",
            "resources_prefix",
            "handoffs",
            "temperature",
            "max_tokens",
        ]
        labels = {"slug": "Id"}
        help_texts = {
            "tools": 'JSON: "auto" (every tool the caller may execute), "none", or ["calculator", …]',
            "handoffs": 'JSON: a list of the team\'s agent ids, e.g. ["billing"]',
        }

    def clean_tools(self) -> Any:
        return _shape(AgentToolsField(), self.cleaned_data.get("tools"))

    def clean_handoffs(self) -> Any:
        return _shape(HandoffsField(), self.cleaned_data.get("handoffs") or [])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        tenant = cleaned.get("tenant") or (self.instance.tenant if self.instance.pk else None)
        slug = cleaned.get("slug") or self.instance.slug
        if isinstance(tenant, Tenant) and slug:
            problems = agent_reference_problems(tenant=tenant, agent_id=slug, values=cleaned)
            for field, messages in problems.items():
                if field in self.fields:
                    self.add_error(field, messages)
        return cleaned


@admin.register(Agent)
class AgentAdmin(OperatorAdmin):
    form = AgentAdminForm
    list_display = ["slug", "name", "tenant", "model", "updated_at"]
    list_filter = ["tenant"]
    search_fields = ["slug", "name", "description", "tenant__slug"]
    ordering = ["tenant", "slug"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Agent]:
        return super().get_queryset(request).select_related("tenant")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # An agent keeps its team and its id: other agents' handoffs and callers' scopes name it.
        return ["tenant", "slug", "created_at", "updated_at"] if obj is not None else []

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        doomed = {(agent.tenant_id, agent.slug) for agent in objs}
        for agent in objs:
            for referrer in agents_handing_off_to(tenant=agent.tenant_id, agent_id=agent.slug):
                if (agent.tenant_id, referrer) not in doomed:
                    protected.append(f"Agent {referrer} hands off to {agent.slug} ({agent.tenant})")
        return deleted, counts, perms_needed, protected
