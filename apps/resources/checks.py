"""`manage.py check --deploy` and a web process's start: resource chunks that another model than the
running one may have embedded (a chunk keeps no model id: the models noted for resources tell,
apps/core/embeddings/usage.py) are said, with the command that re-embeds them."""

from __future__ import annotations

from typing import Any

from django.core import checks

from apps.core.embeddings.usage import forget_other_models, other_models


@checks.register("embeddings", deploy=True)
def chunks_embedded_by_another_model(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from apps.core.embeddings import embedding_model_id
    from apps.resources.models import ResourceChunk

    try:
        running = embedding_model_id()
        if not (others := other_models("resources", running)):
            return []
        # Up to this many: the chunks written since the switch are the running model's already.
        embedded = ResourceChunk.objects.unscoped().filter(embedding__isnull=False).count()
        if not embedded:
            forget_other_models("resources", running)
            return []
    except Exception:  # no database yet, not migrated, no provider: nothing to say
        return []
    names = ", ".join(repr(m) if m else "a model not recorded (before this version)" for m in others)
    return [
        checks.Warning(
            f"Up to {embedded} resource chunks were embedded by {names}, not the running {running!r}: "
            "run `python manage.py resources_reembed --all` (README, Embeddings)",
            id="resources.W001",
        )
    ]
