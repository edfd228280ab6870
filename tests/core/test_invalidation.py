"""Cross-process invalidation of the API key cache over PostgreSQL NOTIFY (apps/core/invalidation.py).

"Another process" is a connection of its own that changes the row and notifies, as
`manage.py revoke_api_key` beside `make run` does: this process learns it without a query, within
a second, though it trusts a cached key for minutes while it listens.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from django.db import connection

from apps.core import invalidation
from apps.tenants import authentication
from apps.tenants.models import ApiKey, Tenant
from apps.tenants.services import api_key_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def listening() -> Iterator[None]:
    invalidation.start_listening()
    deadline = time.monotonic() + 10
    while not invalidation.listening():
        assert time.monotonic() < deadline, "the listener did not connect"
        time.sleep(0.05)
    yield
    invalidation.stop_listening()


def other_process() -> psycopg.Connection:  # type: ignore[type-arg]
    return psycopg.connect(**connection.get_connection_params() | {"context": None, "cursor_factory": None})


def wait_until(condition: object, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def cached(prefix: str) -> bool:
    with authentication._cache_lock:
        return prefix in authentication._cache


def test_a_key_revoked_by_another_process_is_refused_at_once(listening: None) -> None:
    tenant = Tenant.objects.create(slug="inv", name="Inv")
    raw = api_key_create(tenant=tenant, scopes="*").plaintext
    prefix = ApiKey.objects.for_tenant(tenant).get().prefix
    assert authentication.authenticate_key(raw).prefix == prefix
    assert cached(prefix)

    with other_process() as other, other.transaction():
        other.execute("UPDATE tenants_apikey SET revoked_at = now() WHERE prefix = %s", [prefix])
        other.execute("SELECT pg_notify(%s, %s)", [invalidation.CHANNEL, f"api_key\t{prefix}"])
        time.sleep(0.3)
        assert cached(prefix)  # not before the commit: the old row is all there is until then
    assert wait_until(lambda: not cached(prefix))
    with pytest.raises(authentication.ApplicationError, match="revoked"):
        authentication.authenticate_key(raw)


def test_deactivating_a_tenant_drops_its_keys(listening: None) -> None:
    tenant = Tenant.objects.create(slug="inv-t", name="Inv")
    raw = api_key_create(tenant=tenant, scopes="*").plaintext
    authentication.authenticate_key(raw)
    tenant.is_active = False
    tenant.save()
    with pytest.raises(authentication.ApplicationError, match="revoked"):
        authentication.authenticate_key(raw)


def test_a_listener_that_loses_its_connection_forgets_everything() -> None:
    forgotten: list[str | None] = []
    invalidation.register("test-topic", forgotten.append)
    invalidation.start_listening()
    try:
        assert wait_until(invalidation.listening, 10)
        forgotten.clear()
        with other_process() as other:
            other.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                [invalidation.APPLICATION_NAME],
            )
        assert wait_until(lambda: None in forgotten, 15)  # the cache forgot, as it may have missed some
        assert wait_until(invalidation.listening, 10)  # and listens again
        with other_process() as other:
            other.execute("SELECT pg_notify(%s, %s)", [invalidation.CHANNEL, "test-topic\tx"])
        assert wait_until(lambda: "x" in forgotten)
    finally:
        invalidation.stop_listening()
        invalidation._handlers.pop("test-topic", None)
