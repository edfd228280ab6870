"""The tenant-owned base model and its fail-closed queryset.

Every tenant-owned table inherits `TenantOwnedModel`. Its manager refuses to run a query until the
queryset says whose rows it wants: `.for_tenant(tenant)` scopes by tenant, and `.unscoped()` is the
one explicitly named escape hatch for code that must cross tenants (operators, the API-key lookup).
A query whose top-level filter pins the tenant (`tenant=…`) is scoped too: that is how Django's own
unique-constraint validation queries, and every tenant-owned constraint starts with `tenant`.
A related manager reached from a tenant-owned instance (`thread.messages`) is scoped to that
instance's tenant automatically.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.lookups import Exact
from django.db.models.sql.where import AND

if TYPE_CHECKING:
    from apps.tenants.models import Tenant


class TenantScopeError(RuntimeError):
    """A tenant-owned table was queried without `.for_tenant()` or `.unscoped()`."""


_UNSET = object()


class TenantQuerySet(models.QuerySet[Any]):
    _scope: object = _UNSET  # a tenant id, or "unscoped"

    def for_tenant(self, tenant: Tenant | int) -> Self:
        tenant_id = tenant if isinstance(tenant, int) else tenant.pk
        if tenant_id is None:
            raise TenantScopeError("for_tenant() needs a saved tenant")
        if self._scope not in (_UNSET, "unscoped", tenant_id):
            raise TenantScopeError("this queryset is already scoped to another tenant")
        clone = self.filter(tenant_id=tenant_id)
        clone._scope = tenant_id
        return clone

    def unscoped(self) -> Self:
        """Every tenant's rows. Only for operator tools and the credential lookup."""
        clone = self._chain()  # type: ignore[attr-defined]
        clone._scope = "unscoped"
        return clone

    @property
    def is_scoped(self) -> bool:
        return self._scope is not _UNSET

    def _pins_tenant(self) -> bool:
        where = self.query.where
        if where.connector != AND or where.negated:
            return False
        return any(
            isinstance(child, Exact)
            and getattr(getattr(child.lhs, "target", None), "name", None) == "tenant"
            and getattr(child.lhs, "alias", None) == self.query.base_table
            for child in where.children
        )

    def _guard(self) -> None:
        if self._scope is _UNSET and not self._pins_tenant():
            raise TenantScopeError(
                f"{self.model.__name__} queried without .for_tenant(tenant) or .unscoped()"
            )

    def _clone(self) -> Self:
        clone = super()._clone()  # type: ignore[misc]
        clone._scope = self._scope
        return clone

    def _fetch_all(self) -> None:
        if self._result_cache is None:
            self._guard()
        super()._fetch_all()

    def iterator(self, chunk_size: int | None = None) -> Any:
        self._guard()
        return super().iterator(chunk_size=chunk_size)

    def count(self) -> int:
        self._guard()
        return super().count()

    def exists(self) -> bool:
        self._guard()
        return super().exists()

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self._guard()
        return super().aggregate(*args, **kwargs)

    def update(self, **kwargs: Any) -> int:
        self._guard()
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        self._guard()
        return super().delete()

    def get_or_create(self, defaults: Any = None, **kwargs: Any) -> tuple[Any, bool]:
        self._guard()
        return super().get_or_create(defaults=defaults, **kwargs)

    def update_or_create(self, defaults: Any = None, create_defaults: Any = None, **kwargs: Any) -> Any:
        self._guard()
        return super().update_or_create(defaults=defaults, create_defaults=create_defaults, **kwargs)


class TenantManager(models.Manager[Any]):
    def get_queryset(self) -> TenantQuerySet:
        queryset = TenantQuerySet(self.model, using=self._db)
        # A related manager (thread.messages) carries the instance it hangs from: its rows are that
        # instance's tenant's rows.
        instance = getattr(self, "instance", None)
        tenant_id = getattr(instance, "tenant_id", None)
        if tenant_id is not None:
            return queryset.for_tenant(tenant_id)
        return queryset

    def for_tenant(self, tenant: Tenant | int) -> TenantQuerySet:
        return self.get_queryset().for_tenant(tenant)

    def unscoped(self) -> TenantQuerySet:
        return self.get_queryset().unscoped()


class TenantOwnedModel(models.Model):
    """Base of every tenant-owned table: an indexed tenant key and the fail-closed manager."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+", db_index=True)

    # Django's own machinery (cascading deletes, forward relations) keeps the plain base manager.
    objects = TenantManager()

    class Meta:
        abstract = True

    def clean(self) -> None:
        """A row may point only at rows of its own tenant. Forms (the admin's) validate through
        this; relation choices there span tenants, so the check cannot be left to the choices."""
        super().clean()
        problems = []
        for field in self._meta.concrete_fields:
            related = field.related_model
            if field.name == "tenant" or not isinstance(related, type):
                continue
            if not issubclass(related, TenantOwnedModel) or getattr(self, field.attname) is None:
                continue
            target = getattr(self, field.name)
            if self.tenant_id is not None and target.tenant_id != self.tenant_id:
                problems.append(f"{field.verbose_name} {target} belongs to another tenant")
        if problems:
            raise ValidationError("; ".join(problems))


class TimestampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
