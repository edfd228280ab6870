"""The tenant-owned base model and its fail-closed queryset.

Every tenant-owned table inherits `TenantOwnedModel`. Its manager refuses to run a query until the
queryset says whose rows it wants: `.for_tenant(tenant)` scopes by tenant, and `.unscoped()` is the
one explicitly named escape hatch for code that must cross tenants (operators, the API-key lookup).
A query whose top-level filter pins the tenant (`tenant=…`) is scoped too: that is how Django's own
unique-constraint validation queries, and every tenant-owned constraint starts with `tenant`.
A related manager reached from a tenant-owned instance (`thread.messages`) is scoped to that
instance's tenant automatically.

The check runs when the SQL is compiled (`TenantQuery.get_compiler`), so it also covers
`aiterator()` and a queryset used inside another query (`id__in=`, `Subquery`, `Exists`, `union`).
`raw()` needs `.unscoped()`: no scope reaches hand-written SQL, which must carry its own tenant
predicate. Django's own machinery (cascades, forward relations, `refresh_from_db`) uses the plain
base manager and is not affected.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Self

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.lookups import Exact
from django.db.models.sql.query import Query
from django.db.models.sql.where import AND


class TenantScopeError(RuntimeError):
    """A tenant-owned table was queried without `.for_tenant()` or `.unscoped()`."""


_UNSET = object()


def _pins_tenant(query: Query) -> bool:
    """True when the top-level WHERE has `tenant = <a value>` (an expression such as OuterRef or F
    correlates rows across tenants and pins nothing)."""
    where = query.where
    if where.connector != AND or where.negated:
        return False
    return any(
        isinstance(child, Exact)
        and getattr(getattr(child.lhs, "target", None), "name", None) == "tenant"
        and getattr(child.lhs, "alias", None) == query.base_table
        and not hasattr(child.rhs, "resolve_expression")
        for child in where.children
    )


class TenantQuery(Query):
    """The SQL query of a tenant-owned table: it refuses to compile until it is scoped.

    The scope lives on the query rather than on the queryset because every path to the database ends
    in `get_compiler()`: iteration, `aiterator()`, and a queryset used inside another query
    (`filter(id__in=…)`, `Subquery`, `Exists`, `union`), which Django compiles from the inner
    queryset's `query` without calling any queryset method. A clone keeps the scope."""

    tenant_scope: object = _UNSET  # a tenant id, or "unscoped"

    def check_tenant_scope(self) -> None:
        if self.tenant_scope is _UNSET and not _pins_tenant(self):
            raise TenantScopeError(
                f"{self.model.__name__ if self.model else 'A tenant-owned table'} queried without "
                ".for_tenant(tenant) or .unscoped()"
            )

    def get_compiler(self, using: Any = None, connection: Any = None, elide_empty: bool = True) -> Any:
        self.check_tenant_scope()
        return super().get_compiler(using, connection, elide_empty)


class TenantQuerySet(models.QuerySet[Any]):
    def __init__(self, model: Any = None, query: Query | None = None, **kwargs: Any) -> None:
        super().__init__(model, query if query is not None else TenantQuery(model), **kwargs)

    @property
    def _scope(self) -> object:
        return getattr(self.query, "tenant_scope", _UNSET)

    def _with_scope(self, scope: object) -> Self:
        clone = self._chain()  # type: ignore[attr-defined]
        clone.query.tenant_scope = scope
        return clone  # type: ignore[no-any-return]

    def for_tenant(self, tenant: models.Model | int) -> Self:
        """Only `tenant`'s rows. A tenants.Tenant or its id: core names the model only as the
        string "tenants.Tenant", since apps/core imports no feature app."""
        tenant_id = tenant if isinstance(tenant, int) else tenant.pk
        if tenant_id is None:
            raise TenantScopeError("for_tenant() needs a saved tenant")
        if self._scope not in (_UNSET, "unscoped", tenant_id):
            raise TenantScopeError("this queryset is already scoped to another tenant")
        return self.filter(tenant_id=tenant_id)._with_scope(tenant_id)

    def unscoped(self) -> Self:
        """Every tenant's rows. Only for operator tools and the credential lookup."""
        return self._with_scope("unscoped")

    @property
    def is_scoped(self) -> bool:
        return self._scope is not _UNSET

    def _guard(self) -> None:
        # Update, delete and aggregate queries are other Query classes; check before Django builds
        # them (and before any Python-side work such as the deletion collector).
        query = self.query
        if isinstance(query, TenantQuery):
            query.check_tenant_scope()

    def _fetch_all(self) -> None:
        if self._result_cache is None:
            self._guard()
        super()._fetch_all()

    def iterator(self, chunk_size: int | None = None) -> Any:
        self._guard()
        return super().iterator(chunk_size=chunk_size)

    async def aiterator(self, chunk_size: int = 2000) -> AsyncIterator[Any]:
        self._guard()
        async for row in super().aiterator(chunk_size=chunk_size):
            yield row

    def raw(self, raw_query: Any, params: Any = (), translations: Any = None, using: Any = None) -> Any:
        """Raw SQL only through `.unscoped()`: no scope can be applied to SQL written by hand, so
        the caller names the escape hatch and puts the tenant predicate in the SQL itself."""
        if self._scope != "unscoped":
            raise TenantScopeError(
                f"{self.model.__name__}.objects.raw() runs SQL the tenant scope cannot reach: use "
                ".unscoped().raw() with a tenant predicate in the SQL"
            )
        return super().raw(raw_query, params=params, translations=translations, using=using)

    def _check_combinable(self, other: Any) -> None:
        # `a | b` keeps a's scope, so b's rows must be no wider than a's: `for_tenant(a) | unscoped()`
        # would otherwise read every tenant under tenant a's name.
        if self._scope != "unscoped" and getattr(other, "_scope", _UNSET) != self._scope:
            raise TenantScopeError("only querysets scoped to the same tenant can be combined with | or ^")

    def __or__(self, other: Any) -> Self:
        self._check_combinable(other)
        return super().__or__(other)

    def __xor__(self, other: Any) -> Self:
        self._check_combinable(other)
        return super().__xor__(other)

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

    def for_tenant(self, tenant: models.Model | int) -> TenantQuerySet:
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


class EmbeddedWith(models.Model):
    """Which embedding models have stored vectors of a kind ("memory", "resources"): one row per
    pair, not per vector (apps/core/embeddings/usage.py). A process starting on another model finds
    out from this small table, without scanning the stored vectors, that they need a reembed.
    `model_id` "" means vectors stored before the platform recorded their model."""

    kind = models.CharField(max_length=40)
    model_id = models.CharField(max_length=200, blank=True)
    noted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "model_id"], name="embedded_with_unique")]

    def __str__(self) -> str:
        return f"{self.kind}: {self.model_id or '(not recorded)'}"
