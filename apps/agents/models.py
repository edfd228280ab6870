from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from apps.core.models import TenantOwnedModel

AGENT_ID_PATTERN = r"^[a-z0-9_-]{1,64}$"


def default_tools() -> str:
    """Every tool the caller may execute, as for a chat without an agent."""
    return "auto"


class Agent(TenantOwnedModel):
    """A tenant's named agent (PROTOCOL.md §11): a model, instructions and what it may use.

    What it may do at run time is this configuration intersected with the calling key's scope.
    """

    slug = models.CharField(
        max_length=64,
        validators=[RegexValidator(AGENT_ID_PATTERN, "1-64 of a-z, 0-9, _ and -")],
        help_text="The agent's id in the API (`agent`, `agents`, `handoffs`)",
    )
    name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True, help_text="What it is good at: routing by content reads this")
    model = models.CharField(
        max_length=100, blank=True, help_text="A model name of the team; empty: the default"
    )
    instructions = models.TextField(blank=True, help_text="Its system prompt")
    # "auto" (every tool the caller may execute), "none", or a list of tool names.
    tools = models.JSONField(default=default_tools, blank=True)
    memory_prefix = models.CharField(max_length=500, blank=True)
    resources_prefix = models.CharField(max_length=500, blank=True)
    handoffs = models.JSONField(default=list, blank=True, help_text="Ids of agents it may transfer to")
    temperature = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)]
    )
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        constraints = [models.UniqueConstraint(fields=["tenant", "slug"], name="agents_slug_per_tenant")]

    def __str__(self) -> str:
        return self.slug
