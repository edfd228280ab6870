"""Operators' admin for memory: browse by tenant, search keys and text, edit values (re-embedded)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.billing.caps import ensure_room
from apps.core.admin import OperatorAdmin
from apps.core.errors import ApplicationError
from apps.memory import services
from apps.memory.models import MemoryItem


class MemoryItemForm(forms.ModelForm):
    class Meta:
        model = MemoryItem
        fields = ["tenant", "key", "value"]

    def _get_validation_exclusions(self) -> set[str]:
        # Django checks the (tenant, key) constraint through the model's default manager, which
        # refuses unscoped queries; clean() checks it within the tenant instead.
        return {*super()._get_validation_exclusions(), "tenant", "key"}  # type: ignore[misc]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        try:
            if "key" in cleaned:
                services.validate_key(cleaned["key"])
            if "value" in cleaned:
                services.validate_value(cleaned["value"])
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from None
        tenant, key = cleaned.get("tenant"), cleaned.get("key")
        if (
            self.instance.pk is None
            and tenant is not None
            and key is not None
            and MemoryItem.objects.for_tenant(tenant).filter(key=key).exists()
        ):
            raise forms.ValidationError(f"{tenant} already has a memory key {key!r}; edit that one")
        if self.instance.pk is None and tenant is not None:
            # Billing cap (apps/billing/caps.py) shown on the form; the service checks it again.
            try:
                ensure_room(tenant, "memory_items")
            except ApplicationError as exc:
                raise forms.ValidationError(exc.message) from None
        return cleaned


@admin.register(MemoryItem)
class MemoryItemAdmin(OperatorAdmin):
    form = MemoryItemForm
    list_display = ["key", "tenant", "updated_at", "created_at"]
    list_filter = ["tenant"]
    list_select_related = ["tenant"]
    search_fields = ["key", "embedding_text"]
    readonly_fields = ["embedding_text", "embedding_model", "created_at", "updated_at"]
    ordering = ["tenant", "key"]
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[MemoryItem]:
        # The tenant filter narrows the list to one tenant; the vectors are never shown.
        return super().get_queryset(request).defer("embedding")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(self.readonly_fields)
        if obj is not None:  # a key is its identity: edit the value, or add a new key
            fields = ["tenant", "key", *fields]
        return fields

    def save_model(self, request: HttpRequest, obj: MemoryItem, form: Any, change: bool) -> None:
        # Through the service, so the vector always matches the value.
        stored = services.memory_item_store(tenant=obj.tenant, key=obj.key, value=obj.value)
        obj.pk = MemoryItem.objects.for_tenant(obj.tenant).get(key=stored.key).pk
