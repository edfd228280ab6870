from __future__ import annotations

from django.urls import path

from apps.resources.api import ResourceDetailView, ResourceListView, ResourcePrefixView, ResourceSearchView

# Order matters: `search` and `prefix/…` are routes, every other path is a resource id.
urlpatterns = [
    path("resources", ResourceListView.as_view(), name="resources"),
    path("resources/search", ResourceSearchView.as_view(), name="resources-search"),
    path("resources/prefix/<path:prefix>", ResourcePrefixView.as_view(), name="resources-prefix"),
    path("resources/<path:resource_id>", ResourceDetailView.as_view(), name="resource"),
]
