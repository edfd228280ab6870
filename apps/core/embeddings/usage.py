"""Which embedding model stored the vectors each feature keeps, so an upgrade that changes the
model (the default runtime, the provider) is said at start instead of silently mixing vectors.

    note_embedded("memory", model_id)      # before storing vectors made by `model_id`
    other_models("memory", running)        # the models other than `running` noted for the kind
    forget_other_models("memory", running) # after a full reembed: only `running` is left

A feature notes its model once per process (an insert that ignores a conflict, remembered only
once its transaction commits), so the table has one row per (kind, model) and a start reads it in
one small query. A row says vectors of that model *may* be stored: the feature's own check
(memory and resources `checks.py`) counts them when, and only when, another model is noted.
"""

from __future__ import annotations

from django.db import transaction

_noted: set[tuple[str, str]] = set()


def noted(kind: str, model_id: str) -> bool:
    """Whether this process has noted (and seen committed) vectors of `kind` by `model_id`."""
    return (kind, model_id) in _noted


def note_embedded(kind: str, model_id: str) -> None:
    key = (kind, model_id)
    if key in _noted:
        return
    from apps.core.models import EmbeddedWith

    EmbeddedWith.objects.bulk_create([EmbeddedWith(kind=kind, model_id=model_id)], ignore_conflicts=True)
    # Remembered at commit: a rolled-back write takes its row with it, and the next one notes again.
    transaction.on_commit(lambda: _noted.add(key))


def other_models(kind: str, running: str) -> list[str]:
    from apps.core.models import EmbeddedWith

    rows = EmbeddedWith.objects.filter(kind=kind).exclude(model_id=running).order_by("model_id")
    return list(rows.values_list("model_id", flat=True))


def forget_other_models(kind: str, running: str) -> None:
    """Every vector of the kind is now the running model's (a full reembed, or none left)."""
    from apps.core.models import EmbeddedWith

    EmbeddedWith.objects.filter(kind=kind).exclude(model_id=running).delete()
    note_embedded(kind, running)


def forget_noted() -> None:
    """Tests: forget what this process has noted."""
    _noted.clear()
