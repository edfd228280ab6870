"""The base of every admin: operators cross tenants on purpose, through the named escape hatch.

The tenant-scoped manager refuses a query that says nothing about whose rows it wants. Django's
admin queries in three places: the admin's own list and object lookups (`get_queryset`), the
choices of a relation field (a `<select>` of another model's rows), and an inline's rows (with the
hidden row-id field a bound inline form looks each row up by). All of them go through
`OperatorAdminMixin`, which says `.unscoped()` explicitly for tenant-owned models and leaves every
other model alone. A row that points at another tenant's row is refused by
`TenantOwnedModel.clean()`, which every admin form runs.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Field, QuerySet
from django.forms import BaseInlineFormSet, ModelChoiceField
from django.http import HttpRequest

from apps.core.models import TenantQuerySet


def _operator_view(queryset: QuerySet[Any]) -> QuerySet[Any]:
    if isinstance(queryset, TenantQuerySet) and not queryset.is_scoped:
        return queryset.unscoped()
    return queryset


class OperatorAdminMixin:
    """`get_queryset` and relation choices see every tenant's rows (admins and inlines alike)."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return _operator_view(super().get_queryset(request))  # type: ignore[misc]

    def get_field_queryset(self, db: str | None, db_field: Field[Any, Any], request: HttpRequest) -> Any:
        queryset = super().get_field_queryset(db, db_field, request)  # type: ignore[misc]
        if queryset is None:  # Django would use the related model's default manager as it is
            queryset = db_field.remote_field.model._default_manager.using(db).all()  # type: ignore[union-attr]
        return _operator_view(queryset)


class OperatorAdmin(OperatorAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Base of every ModelAdmin in the platform."""


class OperatorInlineFormSet(BaseInlineFormSet):  # type: ignore[type-arg]
    """Django builds each inline row's id field on the model's default manager; saving a bound
    form looks the row up through it, so it needs the escape hatch too."""

    def add_fields(self, form: Any, index: int | None) -> None:
        super().add_fields(form, index)
        pk_field = form.fields.get(self.model._meta.pk.name)  # type: ignore[union-attr]
        if isinstance(pk_field, ModelChoiceField) and pk_field.queryset is not None:
            pk_field.queryset = _operator_view(pk_field.queryset)


class OperatorTabularInline(OperatorAdminMixin, admin.TabularInline):  # type: ignore[type-arg]
    """Base of every tabular inline in the platform."""

    formset = OperatorInlineFormSet
