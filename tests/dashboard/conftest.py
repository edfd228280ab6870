"""Fixtures of the console's tests: users who are members of teams, signed in to a test client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.tenants.models import Membership, Tenant

PASSWORD = "correct horse battery staple"


@pytest.fixture
def make_member(db: None) -> Callable[..., Any]:
    """make_member(tenant, role="member", username=None) -> the user, a member of the team."""

    def make(tenant: Tenant, role: str = "member", username: str | None = None) -> Any:
        name = username or f"{role}-{tenant.slug}"
        user = get_user_model().objects.create_user(name, email=f"{name}@example.com", password=PASSWORD)
        Membership.objects.for_tenant(tenant).create(tenant=tenant, user=user, role=role)
        return user

    return make


@pytest.fixture
def console_for(make_member: Callable[..., Any]) -> Callable[..., Client]:
    """console_for(tenant, role) -> a test client signed in as a new member with that role."""

    def make(tenant: Tenant, role: str = "member") -> Client:
        client = Client()
        client.force_login(make_member(tenant, role))
        return client

    return make


from tests.dashboard.browser import console_server, page  # noqa: E402, F401  (fixtures)
