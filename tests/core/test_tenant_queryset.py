"""The fail-closed tenant queryset: a row of tenant A is invisible through tenant B."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.db.models import Exists, OuterRef, Subquery

from apps.core.models import TenantScopeError
from apps.tenants.models import ApiKey, Tenant
from apps.tenants.services import api_key_create

pytestmark = pytest.mark.django_db


def test_a_row_of_alice_is_invisible_to_charlie(alice: Tenant, charlie: Tenant) -> None:
    api_key_create(tenant=alice, scopes="*", name="alice-key")
    assert [k.name for k in ApiKey.objects.for_tenant(alice)] == ["alice-key"]
    assert list(ApiKey.objects.for_tenant(charlie)) == []
    assert ApiKey.objects.for_tenant(charlie).count() == 0
    assert not ApiKey.objects.for_tenant(charlie).filter(name="alice-key").exists()


@pytest.mark.parametrize(
    "query",
    [
        lambda: list(ApiKey.objects.all()),
        lambda: ApiKey.objects.filter(name="x").first(),
        lambda: ApiKey.objects.get(name="x"),
        lambda: ApiKey.objects.count(),
        lambda: ApiKey.objects.exists(),
        lambda: ApiKey.objects.update(name="y"),
        lambda: ApiKey.objects.filter(name="x").delete(),
        lambda: list(ApiKey.objects.values("name")),
        lambda: list(ApiKey.objects.iterator()),
        lambda: ApiKey.objects.get_or_create(name="x"),
    ],
)
def test_an_unscoped_query_fails_closed(alice: Tenant, query: object) -> None:
    api_key_create(tenant=alice, scopes="*", name="x")
    with pytest.raises(TenantScopeError):
        query()  # type: ignore[operator]


def test_the_escape_hatch_is_explicit(alice: Tenant, charlie: Tenant) -> None:
    api_key_create(tenant=alice, scopes="*")
    api_key_create(tenant=charlie, scopes="*")
    assert ApiKey.objects.unscoped().count() == 2


def test_a_scoped_queryset_cannot_be_rescoped_to_another_tenant(alice: Tenant, charlie: Tenant) -> None:
    with pytest.raises(TenantScopeError):
        ApiKey.objects.for_tenant(alice).for_tenant(charlie)


def test_deleting_a_tenant_cascades(alice: Tenant) -> None:
    api_key_create(tenant=alice, scopes="*")
    alice.delete()
    assert ApiKey.objects.unscoped().count() == 0


def test_a_query_that_pins_the_tenant_is_scoped(alice: Tenant, charlie: Tenant) -> None:
    api_key_create(tenant=alice, scopes="*", name="mine")
    assert [k.name for k in ApiKey.objects.filter(tenant=alice)] == ["mine"]
    assert ApiKey.objects.filter(tenant_id=charlie.pk).count() == 0
    with pytest.raises(TenantScopeError):
        ApiKey.objects.exclude(tenant=charlie).count()
    with pytest.raises(TenantScopeError):
        ApiKey.objects.filter(tenant__slug=alice.slug).count()


# --- the paths that reach the database without a queryset method: issue 12, item 3 ------------


def test_aiterator_fails_closed(alice: Tenant) -> None:
    api_key_create(tenant=alice, scopes="*", name="x")

    async def drain(queryset: object) -> list[object]:
        return [row async for row in queryset.aiterator()]  # type: ignore[attr-defined]

    with pytest.raises(TenantScopeError):
        async_to_sync(drain)(ApiKey.objects.all())
    assert [k.name for k in async_to_sync(drain)(ApiKey.objects.for_tenant(alice))] == ["x"]


@pytest.mark.parametrize(
    "subquery",
    [
        lambda: Tenant.objects.filter(id__in=ApiKey.objects.values("tenant_id")),
        lambda: Tenant.objects.filter(Exists(ApiKey.objects.filter(tenant_id=OuterRef("pk"), name="x"))),
        lambda: Tenant.objects.annotate(key=Subquery(ApiKey.objects.filter(name="x").values("name")[:1])),
        lambda: ApiKey.objects.for_tenant(1).union(ApiKey.objects.filter(name="x")),
    ],
    ids=["in", "exists", "subquery", "union"],
)
def test_an_unscoped_queryset_inside_another_query_fails_closed(alice: Tenant, subquery: object) -> None:
    api_key_create(tenant=alice, scopes="*", name="x")
    with pytest.raises(TenantScopeError):
        list(subquery())  # type: ignore[operator]


def test_a_scoped_subquery_reads_only_its_tenant(alice: Tenant, charlie: Tenant) -> None:
    api_key_create(tenant=alice, scopes="*", name="x")
    api_key_create(tenant=charlie, scopes="*", name="x")
    owners = Tenant.objects.filter(id__in=ApiKey.objects.for_tenant(charlie).values("tenant_id"))
    assert list(owners) == [charlie]
    assert Tenant.objects.filter(id__in=ApiKey.objects.unscoped().values("tenant_id")).count() == 2


def test_raw_sql_needs_the_escape_hatch(alice: Tenant, charlie: Tenant) -> None:
    api_key_create(tenant=alice, scopes="*", name="x")
    sql = f"SELECT * FROM {ApiKey._meta.db_table}"  # noqa: S608
    with pytest.raises(TenantScopeError):
        list(ApiKey.objects.raw(sql))
    # A scope cannot reach hand-written SQL: for_tenant().raw() would read every tenant's rows.
    with pytest.raises(TenantScopeError):
        list(ApiKey.objects.for_tenant(charlie).raw(sql))
    assert [k.name for k in ApiKey.objects.unscoped().raw(sql)] == ["x"]


def test_or_with_a_wider_queryset_fails_closed(alice: Tenant, charlie: Tenant) -> None:
    api_key_create(tenant=charlie, scopes="*", name="theirs")
    with pytest.raises(TenantScopeError):
        list(ApiKey.objects.for_tenant(alice) | ApiKey.objects.unscoped())
    mine = ApiKey.objects.for_tenant(alice)
    assert list(mine.filter(name="a") | mine.filter(name="b")) == []
