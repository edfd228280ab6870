"""Which models a tenant may use: the platform's (from the environment) and its own configurations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from django.conf import settings

from apps.core.errors import ApplicationError
from apps.core.tenant_cache import TenantSnapshots
from apps.llm.models import ModelConfig, UsageRecord
from apps.llm.secrets import decrypt_secret
from apps.tenants.models import Tenant


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    provider: str
    upstream_model: str
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout_seconds: float = 60.0
    max_output_tokens: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    is_default: bool = False
    source: str = "platform"


def platform_models() -> dict[str, ResolvedModel]:
    found: dict[str, ResolvedModel] = {
        "echo": ResolvedModel(name="echo", provider="echo", upstream_model="echo")
    }
    timeout = float(settings.SLOP_LLM_TIMEOUT_SECONDS)
    if settings.OPENAI_API_KEY or settings.SLOP_OPENAI_BASE_URL:
        for name in settings.SLOP_OPENAI_MODELS:
            found[name] = ResolvedModel(
                name=name,
                provider="openai",
                upstream_model=name,
                base_url=settings.SLOP_OPENAI_BASE_URL,
                api_key=settings.OPENAI_API_KEY,
                timeout_seconds=timeout,
            )
    if settings.ANTHROPIC_API_KEY:
        for name in settings.SLOP_ANTHROPIC_MODELS:
            found[name] = ResolvedModel(
                name=name,
                provider="anthropic",
                upstream_model=name,
                base_url=settings.SLOP_ANTHROPIC_BASE_URL,
                api_key=settings.ANTHROPIC_API_KEY,
                timeout_seconds=timeout,
            )
    return found


def _from_config(config: ModelConfig) -> ResolvedModel:
    return ResolvedModel(
        name=config.name,
        provider=config.provider,
        upstream_model=config.upstream_model or config.name,
        base_url=config.base_url or None,
        api_key=decrypt_secret(config.api_key_encrypted) if config.api_key_encrypted else None,
        timeout_seconds=float(config.timeout_seconds),
        max_output_tokens=config.max_output_tokens,
        options=dict(config.options or {}),
        is_default=config.is_default,
        source="tenant",
    )


def available_models(*, tenant: Tenant | int) -> dict[str, ResolvedModel]:
    """Every model the tenant may name; its own configurations win over platform ones."""
    models = platform_models()
    for config in ModelConfig.objects.for_tenant(tenant).order_by("name"):
        models[config.name] = _from_config(config)
    return models


def default_model_name(models: Mapping[str, ResolvedModel]) -> str:
    for model in models.values():
        if model.is_default:
            return model.name
    wanted = settings.SLOP_DEFAULT_MODEL
    if wanted and wanted in models:
        return wanted
    for model in models.values():
        if model.source == "platform" and model.provider != "echo":
            return model.name
    return "echo"


# A chat and /info read the models from a snapshot (apps/core/tenant_cache.py: a change reaches every
# web process at its commit); the admin reads the table.
chat_model_snapshots = TenantSnapshots(lambda tenant_id: MappingProxyType(available_models(tenant=tenant_id)))


def model_resolve(*, tenant: Tenant, name: str | None) -> ResolvedModel:
    """The model a request names (or the tenant's default); 400 listing the valid ones if unknown."""
    models = chat_model_snapshots.get(int(tenant.pk))
    chosen = name or default_model_name(models)
    if chosen not in models:
        valid = sorted(models)
        raise ApplicationError(
            f"Unknown model {chosen!r}; this tenant can use: {', '.join(valid)}",
            code="unknown_model",
            status=400,
            extra={"models": valid},
        )
    return models[chosen]


def usage_for(*, tenant: Tenant) -> list[UsageRecord]:
    return list(UsageRecord.objects.for_tenant(tenant).order_by("-day", "model"))
