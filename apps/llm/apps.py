from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class LlmConfig(AppConfig):
    name = "apps.llm"
    label = "llm"
    verbose_name = "Models (LLM providers)"

    def slop_capabilities(self, principal: Any) -> dict[str, Any]:
        """Anonymous: the platform's models (echo, and those of a configured provider); with a key,
        every model the tenant may pick (its own configurations too)."""
        from apps.llm.selectors import chat_model_snapshots, platform_models

        if principal is None:
            return {"models": sorted(platform_models())}
        return {"models": sorted(chat_model_snapshots.get(int(principal.tenant.pk)))}

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from apps.llm.models import ModelConfig
        from apps.llm.selectors import chat_model_snapshots

        def forget(sender: Any, instance: ModelConfig, **kwargs: Any) -> None:
            chat_model_snapshots.forget_changed(instance.tenant_id)

        post_save.connect(forget, sender=ModelConfig, weak=False, dispatch_uid="llm-forget-chat-snapshot")
        post_delete.connect(forget, sender=ModelConfig, weak=False, dispatch_uid="llm-forget-chat-snapshot")

    def slop_info(self, principal: Any) -> dict[str, Any]:
        from apps.llm.selectors import chat_model_snapshots, default_model_name

        models = chat_model_snapshots.get(int(principal.tenant.pk))
        return {
            "models": [
                {"id": m.name, "provider": m.provider, "default": m.name == default_model_name(models)}
                for m in models.values()
            ]
        }
