from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from apps.agents.models import Agent
from apps.tenants.models import Tenant


@pytest.fixture
def make_agent(db: None) -> Callable[..., Agent]:
    def make(tenant: Tenant, slug: str, **fields: Any) -> Agent:
        fields.setdefault("name", slug.title())
        fields.setdefault("tools", "auto")
        return Agent.objects.create(tenant=tenant, slug=slug, **fields)

    return make
