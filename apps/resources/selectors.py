"""Reads of resources. Scope prefixes are applied inside the query, so a list never loads a row
the caller may not read."""

from __future__ import annotations

from django.db.models import Q

from apps.core.pagination import Page, paginate
from apps.resources.models import Resource
from apps.resources.services import not_found
from apps.tenants.models import Tenant


def readable_filter(readable_prefixes: list[str] | None, *, field: str = "path") -> Q:
    """None means every id; a list means ids starting with one of the prefixes ([] means none)."""
    if readable_prefixes is None:
        return Q()
    if not readable_prefixes:
        return Q(pk__in=[])
    condition = Q()
    for prefix in readable_prefixes:
        condition |= Q(**{f"{field}__startswith": prefix})
    return condition


def resource_get(*, tenant: Tenant, resource_id: str) -> Resource:
    resource = (
        Resource.objects.for_tenant(tenant).select_related("index_job").filter(path=resource_id).first()
    )
    if resource is None:
        raise not_found(resource_id)
    return resource


def resource_list(
    *,
    tenant: Tenant,
    readable_prefixes: list[str] | None,
    cursor: str | None,
    limit: int,
    type: str | None = None,
    prefix: str | None = None,
) -> Page:
    """Newest first; `prefix` is a plain string prefix of the id (`notes/` or `notes/h`)."""
    queryset = Resource.objects.for_tenant(tenant).filter(readable_filter(readable_prefixes)).defer("content")
    if type:
        queryset = queryset.filter(type=type)
    if prefix:
        queryset = queryset.filter(path__startswith=prefix)
    return paginate(queryset, cursor=cursor, limit=limit)
