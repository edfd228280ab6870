"""The fail-closed tenant queryset: a row of tenant A is invisible through tenant B."""

from __future__ import annotations

import pytest

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
