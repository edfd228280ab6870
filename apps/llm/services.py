"""Writes: tenant model configurations and token usage."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.core.errors import ApplicationError, ValidationFailed
from apps.llm.models import ModelConfig, Provider, UsageRecord
from apps.llm.secrets import encrypt_secret
from apps.tenants.models import Tenant


def model_config_create(
    *,
    tenant: Tenant,
    name: str,
    provider: str,
    upstream_model: str = "",
    base_url: str = "",
    api_key: str | None = None,
    is_default: bool = False,
    max_output_tokens: int | None = None,
    timeout_seconds: int = 60,
    options: dict[str, Any] | None = None,
) -> ModelConfig:
    if provider not in Provider.values:
        raise ValidationFailed({"provider": [f"One of {', '.join(Provider.values)}."]})
    if not name or len(name) > 100:
        raise ValidationFailed({"name": ["1 to 100 characters."]})
    with transaction.atomic():
        if is_default:
            ModelConfig.objects.for_tenant(tenant).filter(is_default=True).update(is_default=False)
        try:
            return ModelConfig.objects.create(
                tenant=tenant,
                name=name,
                provider=provider,
                upstream_model=upstream_model,
                base_url=base_url,
                api_key_encrypted=encrypt_secret(api_key) if api_key else "",
                is_default=is_default,
                max_output_tokens=max_output_tokens,
                timeout_seconds=timeout_seconds,
                options=options or {},
            )
        except IntegrityError:
            raise ApplicationError(
                f"A model named {name!r} already exists", code="conflict", status=409
            ) from None


def model_config_set_api_key(*, config: ModelConfig, api_key: str | None) -> ModelConfig:
    config.api_key_encrypted = encrypt_secret(api_key) if api_key else ""
    config.save(update_fields=["api_key_encrypted", "updated_at"])
    return config


def usage_record(*, tenant: Tenant | int, model: str, input_tokens: int, output_tokens: int) -> None:
    """Adds one request's tokens to today's row for (tenant, model); safe under concurrency."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    day = timezone.now().date()
    increments = {
        "requests": F("requests") + 1,
        "input_tokens": F("input_tokens") + input_tokens,
        "output_tokens": F("output_tokens") + output_tokens,
    }
    rows = UsageRecord.objects.for_tenant(tenant_id).filter(day=day, model=model)
    if rows.update(**increments):
        return
    try:
        with transaction.atomic():
            UsageRecord.objects.create(
                tenant_id=tenant_id,
                model=model,
                day=day,
                requests=1,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
            )
    except IntegrityError:  # another request created today's row first
        rows.update(**increments)
