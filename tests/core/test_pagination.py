from __future__ import annotations

import pytest

from apps.core.errors import ApplicationError
from apps.core.pagination import paginate, parse_limit
from apps.tenants.models import ApiKey, Tenant
from apps.tenants.services import api_key_create

pytestmark = pytest.mark.django_db


def test_pages_walk_newest_first_without_gaps_or_repeats(alice: Tenant) -> None:
    for index in range(7):
        api_key_create(tenant=alice, scopes="*", name=f"k{index}")
    seen: list[str] = []
    cursor = None
    while True:
        page = paginate(ApiKey.objects.for_tenant(alice), cursor=cursor, limit=3)
        seen.extend(key.name for key in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"k{index}" for index in reversed(range(7))]


@pytest.mark.parametrize("raw", ["0", "201", "abc", "-1"])
def test_bad_limits_are_refused(raw: str) -> None:
    with pytest.raises(ApplicationError):
        parse_limit(raw)


def test_bad_cursor_is_refused(alice: Tenant) -> None:
    with pytest.raises(ApplicationError) as raised:
        paginate(ApiKey.objects.for_tenant(alice), cursor="!!!notacursor", limit=3)
    assert raised.value.status == 400
