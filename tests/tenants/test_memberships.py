"""Membership is tenant-owned: the fail-closed queryset guards it and the admin still works."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from apps.core.models import TenantScopeError
from apps.tenants.models import Membership, Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator() -> User:
    return User.objects.create_superuser("op", "op@example.com", "pw-for-tests-only")


def test_a_membership_of_alice_is_invisible_to_charlie(alice: Tenant, charlie: Tenant) -> None:
    user = User.objects.create_user("dana")
    Membership.objects.create(tenant=alice, user=user, role=Membership.Role.OWNER)

    assert [m.user.username for m in Membership.objects.for_tenant(alice)] == ["dana"]
    assert list(Membership.objects.for_tenant(charlie)) == []
    with pytest.raises(TenantScopeError):
        list(Membership.objects.all())
    # A user spans teams: their memberships cross tenants only through the named escape hatch.
    with pytest.raises(TenantScopeError):
        list(user.memberships.all())
    assert user.memberships.unscoped().count() == 1
    assert alice.memberships.count() == 1 and charlie.memberships.count() == 0


def test_the_admin_lists_adds_and_edits_memberships(alice: Tenant, operator: User) -> None:
    client = Client()
    client.force_login(operator)
    dana = User.objects.create_user("dana")

    assert client.get("/admin/tenants/membership/").status_code == 200
    assert client.get("/admin/tenants/membership/add/").status_code == 200
    added = client.post(
        "/admin/tenants/membership/add/", {"tenant": alice.pk, "user": dana.pk, "role": "admin"}
    )
    assert added.status_code == 302
    membership = Membership.objects.for_tenant(alice).get(user=dana)
    assert membership.role == "admin"
    assert client.get(f"/admin/tenants/membership/{membership.pk}/change/").status_code == 200
    # The same user twice in one team is a form error, not a 500.
    again = client.post(
        "/admin/tenants/membership/add/", {"tenant": alice.pk, "user": dana.pk, "role": "member"}
    )
    assert again.status_code == 200 and Membership.objects.for_tenant(alice).count() == 1
    # The team's page carries the memberships inline, and so does a new team's.
    page = client.get(f"/admin/tenants/tenant/{alice.pk}/change/")
    assert page.status_code == 200 and "dana" in page.content.decode()
    assert client.get("/admin/tenants/tenant/add/").status_code == 200
