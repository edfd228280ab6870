from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from apps.memory.services import memory_item_store
from apps.tenants.models import Tenant


@pytest.fixture
def remember(db: None) -> Callable[..., None]:
    """Store items for a tenant directly through the service: remember(tenant, key=value, ...)."""

    def store(tenant: Tenant, items: dict[str, Any]) -> None:
        for key, value in items.items():
            memory_item_store(tenant=tenant, key=key, value=value)

    return store
