from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

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
class ModelConfigAdmin(admin.ModelAdmin):
    form = ModelConfigForm
    list_display = ["name", "tenant", "provider", "upstream_model", "is_default"]
    list_filter = ["provider"]

    def get_queryset(self, request: Any) -> Any:
        return ModelConfig.objects.unscoped()  # operators see every tenant's configurations

    def save_model(self, request: Any, obj: ModelConfig, form: Any, change: bool) -> None:
        if form.cleaned_data.get("api_key"):
            obj.api_key_encrypted = encrypt_secret(form.cleaned_data["api_key"])
        super().save_model(request, obj, form, change)


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = ["day", "tenant", "model", "requests", "input_tokens", "output_tokens"]
    list_filter = ["day", "model"]

    def get_queryset(self, request: Any) -> Any:
        return UsageRecord.objects.unscoped()
