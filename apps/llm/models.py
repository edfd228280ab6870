from __future__ import annotations

from django.db import models

from apps.core.models import TenantOwnedModel


class Provider(models.TextChoices):
    OPENAI = "openai", "OpenAI-compatible"
    ANTHROPIC = "anthropic", "Anthropic"
    ECHO = "echo", "Echo (development)"


class ModelConfig(TenantOwnedModel):
    """A model a tenant can chat with: `name` is what clients send as `model`."""

    name = models.CharField(max_length=100)
    provider = models.CharField(max_length=20, choices=Provider.choices)
    upstream_model = models.CharField(
        max_length=200, blank=True, help_text="The provider's model id; defaults to name"
    )
    base_url = models.URLField(max_length=500, blank=True)
    api_key_encrypted = models.TextField(blank=True)
    is_default = models.BooleanField(default=False)
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True)
    timeout_seconds = models.PositiveIntegerField(default=60)
    options = models.JSONField(default=dict, blank=True)  # provider extras, e.g. echo's delay_ms
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="llm_model_name_per_tenant")]

    def __str__(self) -> str:
        return f"{self.name} ({self.provider})"


class UsageRecord(TenantOwnedModel):
    """Tokens used per tenant, model and day (UTC), for billing."""

    model = models.CharField(max_length=100)
    day = models.DateField()
    requests = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "day", "model"], name="llm_usage_per_tenant_day_model")
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.day} {self.model}"
