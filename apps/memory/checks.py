"""`manage.py check --deploy` and a web process's start: memory items embedded by another model
than the running one (after an upgrade that changed the default runtime, or a switch of provider)
are said, with the command that fixes them, instead of being compared with new vectors silently."""

from __future__ import annotations

from typing import Any

from django.core import checks

from apps.core.embeddings.usage import forget_other_models, other_models


@checks.register("embeddings", deploy=True)
def memory_embedded_by_another_model(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from apps.core.embeddings import embedding_model_id
    from apps.memory.models import MemoryItem

    try:
        running = embedding_model_id()
        # One small query in the usual case; the count (a scan) only while other models are noted.
        if not (others := other_models("memory", running)):
            return []
        stale = MemoryItem.objects.unscoped().exclude(embedding_model=running).count()
        if not stale:  # those items were deleted or re-embedded meanwhile
            forget_other_models("memory", running)
            return []
    except Exception:  # no database yet, not migrated, no provider: nothing to say
        return []
    return [
        checks.Warning(
            f"{stale} memory items were embedded by {', '.join(repr(m) for m in others)}, not the "
            f"running {running!r}: run `python manage.py reembed --all` (README, Embeddings)",
            id="memory.W001",
        )
    ]
