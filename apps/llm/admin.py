from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from apps.core.admin import OperatorAdmin
from apps.llm.models import ModelConfig, UsageRecord
from apps.llm.secrets import encrypt_secret


class ModelConfigForm(forms.ModelForm):
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput,
        help_text="Stored encrypted; leave empty to keep the current key",
    )

    class Meta:
        model = ModelConfig
        fields = [
            "tenant",
            "name",
            "provider",
            "upstream_model",
            "base_url",
            "is_default",
            "max_output_tokens",
            "timeout_seconds",
            "options",
        ]


@admin.register(ModelConfig)
class ModelConfigAdmin(OperatorAdmin):
    form = ModelConfigForm
    list_display = ["name", "tenant", "provider", "upstream_model", "is_default"]
    list_filter = ["provider"]

    def save_model(self, request: Any, obj: ModelConfig, form: Any, change: bool) -> None:
        if form.cleaned_data.get("api_key"):
            obj.api_key_encrypted = encrypt_secret(form.cleaned_data["api_key"])
        super().save_model(request, obj, form, change)


@admin.register(UsageRecord)
class UsageRecordAdmin(OperatorAdmin):
    list_display = ["day", "tenant", "model", "requests", "input_tokens", "output_tokens"]
    list_filter = ["day", "model", "tenant"]
    list_select_related = ["tenant"]
    ordering = ["-day", "tenant", "model"]

    # Metered tokens are what billing reads: shown, never written by hand.
    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False
