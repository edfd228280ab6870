"""A provider instance for a resolved model."""

from __future__ import annotations

from apps.core.errors import ApplicationError
from apps.llm.providers.anthropic_api import AnthropicProvider
from apps.llm.providers.base import Provider
from apps.llm.providers.echo import EchoProvider
from apps.llm.providers.openai_compat import OpenAICompatibleProvider
from apps.llm.selectors import ResolvedModel


def provider_for(model: ResolvedModel) -> Provider:
    if model.provider == "echo":
        delay_ms = model.options.get("delay_ms")
        if not isinstance(delay_ms, int | float):
            from django.conf import settings

            delay_ms = settings.SLOP_ECHO_DELAY_MS
        return EchoProvider(delay_seconds=max(0.0, float(delay_ms)) / 1000)
    # A base URL a tenant chose is reached only through the SSRF-guarded client; the platform's
    # own (from the environment) is trusted, like any other operator setting.
    guarded = model.source != "platform"
    if model.provider == "openai":
        return OpenAICompatibleProvider(
            base_url=model.base_url, api_key=model.api_key, timeout=model.timeout_seconds, guarded=guarded
        )
    if model.provider == "anthropic":
        return AnthropicProvider(
            base_url=model.base_url, api_key=model.api_key, timeout=model.timeout_seconds, guarded=guarded
        )
    raise ApplicationError(
        f"Model {model.name!r} has an unknown provider {model.provider!r}",
        code="model_misconfigured",
        status=502,
    )
