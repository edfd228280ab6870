from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class LlmConfig(AppConfig):
    name = "apps.llm"
    label = "llm"
    verbose_name = "Models (LLM providers)"
    slop_capabilities: dict[str, Any] = {"models": ["echo"]}

    def ready(self) -> None:
        from apps.llm.selectors import platform_models

        # Anonymous GET /info lists the platform's models; a tenant's own appear with its key.
        self.slop_capabilities = {"models": sorted(platform_models())}

        from django.db.models.signals import post_delete, post_save

        from apps.llm.models import ModelConfig
        from apps.llm.selectors import chat_model_snapshots

        def forget(sender: Any, instance: ModelConfig, **kwargs: Any) -> None:
            chat_model_snapshots.forget_changed(instance.tenant_id)

        post_save.connect(forget, sender=ModelConfig, weak=False, dispatch_uid="llm-forget-chat-snapshot")
        post_delete.connect(forget, sender=ModelConfig, weak=False, dispatch_uid="llm-forget-chat-snapshot")

    def slop_info(self, principal: Any) -> dict[str, Any]:
        from apps.llm.selectors import available_models, default_model_name

        models = available_models(tenant=principal.tenant)
        return {
            "models": [
                {"id": m.name, "provider": m.provider, "default": m.name == default_model_name(models)}
                for m in models.values()
            ]
        }
