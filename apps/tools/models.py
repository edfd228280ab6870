"""Tools a tenant can call, and the jobs that run long or asynchronous calls.

Built-in tools live in code (apps/tools/builtins.py); a `Tool` row of kind `builtin` only records a
tenant's own settings for one (disabled, not safe). Webhook tools are rows with a URL and a signing
secret, encrypted at rest.
"""

from __future__ import annotations

from django.db import models

from apps.core.crypto import EncryptedTextField
from apps.core.models import TenantOwnedModel


class Tool(TenantOwnedModel):
    class Kind(models.TextChoices):
        BUILTIN = "builtin"
        WEBHOOK = "webhook"

    slug = models.CharField(max_length=64, help_text="The tool's id in URLs and scopes")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.WEBHOOK)
    description = models.TextField(blank=True, default="")
    schema = models.JSONField(default=dict, blank=True, help_text="JSON Schema of the parameters")
    example = models.JSONField(null=True, blank=True)
    safe = models.BooleanField(default=False)
    long_running = models.BooleanField(default=False)
    timeout_seconds = models.FloatField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    webhook_url = models.URLField(max_length=2000, blank=True, default="")
    signing_secret = EncryptedTextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "slug"], name="tool_unique_slug_per_tenant")]
        ordering = ["slug"]

    def __str__(self) -> str:
        return f"{self.slug} ({self.kind})"


class ToolJob(TenantOwnedModel):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})

    public_id = models.CharField(max_length=40)
    tool = models.ForeignKey(Tool, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    tool_slug = models.CharField(max_length=64)
    call_id = models.CharField(max_length=200, blank=True, default="")
    parameters = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    error_code = models.CharField(max_length=50, blank=True, default="")
    timeout_seconds = models.FloatField()
    attempts = models.PositiveIntegerField(default=0)
    api_key_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="tool_job_unique_id_per_tenant")
        ]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="tool_job_recent"),
            # The reaper's scan: only unfinished jobs, across tenants.
            models.Index(
                fields=["status", "created_at"],
                name="tool_job_unfinished",
                condition=models.Q(status__in=["queued", "running"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.tool_slug} {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.TERMINAL
