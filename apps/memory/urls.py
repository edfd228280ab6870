from __future__ import annotations

from django.urls import path

from apps.memory.api import MemoryCollectionView, MemoryItemView, MemoryQueryView

urlpatterns = [
    path("memory", MemoryCollectionView.as_view(), name="memory"),
    path("memory/query", MemoryQueryView.as_view(), name="memory-query"),
    # The whole rest of the path is the key: thread:thread_12345, user/prefs, notes.v2
    path("memory/<path:key>", MemoryItemView.as_view(), name="memory-item"),
]
