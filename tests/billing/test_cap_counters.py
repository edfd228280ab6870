"""The plan caps read counters (CapCounter) kept by database triggers, not counts: every way to add
or remove what a cap counts moves them — the API, the tool, bulk deletes, cascades, revoking,
raw SQL — and a tenant's deletion leaves none behind; the migration sets them from the rows there
are; `billing_check_caps` finds a counter edited by hand and repairs it."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from apps.billing.caps import CAPS, cap_counters_check, cap_usage
from apps.billing.models import CapCounter
from apps.memory.models import MemoryItem
from apps.memory.services import memory_item_store
from apps.resources.models import Resource
from apps.tenants.models import ApiKey, Membership, Tenant
from apps.tenants.services import api_key_create
from tests.conftest import SlopClient

pytestmark = pytest.mark.django_db


def counters(tenant: Tenant) -> dict[str, int]:
    return {what: int(cap_usage(tenant, what) or 0) for what in CAPS}


def test_memory_items_counted_through_every_door(
    alice: Tenant, charlie: Tenant, alice_client: SlopClient
) -> None:
    for key in ("a", "b", "c"):
        assert alice_client.post("/memory", {"key": key, "value": 1}, format="json").status_code == 200
    assert alice_client.post("/memory", {"key": "a", "value": 2}, format="json").status_code == 200
    assert (
        alice_client.post("/tools/memory_write", {"key": "t", "value": 3}, format="json").status_code == 200
    )
    memory_item_store(tenant=charlie, key="x", value=1)
    assert cap_usage(alice, "memory_items") == 4  # the overwrite added nothing

    assert alice_client.delete("/memory/b").status_code == 200
    assert cap_usage(alice, "memory_items") == 3
    MemoryItem.objects.for_tenant(alice).filter(key__in=["a", "c"]).delete()  # a bulk delete
    assert cap_usage(alice, "memory_items") == 1
    with connection.cursor() as cursor:  # even raw SQL
        cursor.execute("DELETE FROM memory_memoryitem WHERE tenant_id = %s", [alice.pk])
    assert cap_usage(alice, "memory_items") == 0
    assert cap_usage(charlie, "memory_items") == 1


def test_resource_bytes_follow_creates_updates_and_deletes(alice: Tenant, alice_client: SlopClient) -> None:
    new = {"id": "doc", "title": "Doc", "content": "héllo"}
    assert alice_client.post("/resources", new, format="json").status_code == 201
    assert (
        alice_client.post("/resources", {**new, "id": "two", "content": "x" * 10}, format="json").status_code
        == 201
    )
    assert cap_usage(alice, "resource_bytes") == 16

    assert alice_client.put("/resources/doc", {"content": "hi"}, format="json").status_code == 200
    assert alice_client.put("/resources/doc", {"title": "Renamed"}, format="json").status_code == 200
    assert cap_usage(alice, "resource_bytes") == 12
    assert alice_client.delete("/resources/two").status_code in (200, 204)
    assert cap_usage(alice, "resource_bytes") == 2
    Resource.objects.for_tenant(alice).update(content="four")  # a bulk update
    assert cap_usage(alice, "resource_bytes") == 4


def test_api_keys_counted_when_made_revoked_expired_and_deleted(alice: Tenant) -> None:
    keys = [api_key_create(tenant=alice, scopes="*").api_key for _ in range(4)]
    assert cap_usage(alice, "api_keys") == 4
    ApiKey.objects.for_tenant(alice).filter(pk=keys[0].pk).update(revoked_at=timezone.now())
    ApiKey.objects.for_tenant(alice).filter(pk=keys[1].pk).update(expires_at=timezone.now())
    assert cap_usage(alice, "api_keys") == 2
    ApiKey.objects.for_tenant(alice).filter(pk=keys[0].pk).update(revoked_at=None)  # un-revoked by hand
    assert cap_usage(alice, "api_keys") == 3
    ApiKey.objects.for_tenant(alice).filter(pk__in=[keys[0].pk, keys[2].pk]).delete()
    assert cap_usage(alice, "api_keys") == 1


def test_members_counted_when_added_and_removed(alice: Tenant) -> None:
    users = [get_user_model().objects.create_user(username=f"member{i}") for i in range(3)]
    for user in users:
        Membership.objects.create(tenant=alice, user=user)
    assert cap_usage(alice, "members") == 3
    users[0].delete()  # a user's deletion cascades to their memberships
    Membership.objects.for_tenant(alice).filter(user=users[1]).delete()
    assert cap_usage(alice, "members") == 1


def test_deleting_a_tenant_leaves_no_counter_and_the_others_are_untouched(
    alice: Tenant, charlie: Tenant, alice_client: SlopClient, charlie_client: SlopClient
) -> None:
    for client in (alice_client, charlie_client):
        assert client.post("/memory", {"key": "k", "value": 1}, format="json").status_code == 200
        assert (
            client.post("/resources", {"id": "r", "title": "R", "content": "abc"}, format="json").status_code
            == 201
        )
    Membership.objects.create(tenant=alice, user=get_user_model().objects.create_user(username="ann"))

    alice.delete()

    assert not CapCounter.objects.unscoped().filter(tenant_id=alice.pk).exists()
    assert {k: v for k, v in counters(charlie).items() if k != "api_keys"} == {
        "memory_items": 1,
        "resource_bytes": 3,
        "members": 0,
    }


def test_the_counters_agree_with_the_rows_after_a_mix_of_writes(
    alice: Tenant, alice_client: SlopClient
) -> None:
    for index in range(5):
        alice_client.post("/memory", {"key": f"k{index}", "value": index}, format="json")
    alice_client.delete("/memory/k3")
    alice_client.post("/resources", {"id": "r", "title": "R", "content": "abc"}, format="json")
    alice_client.put("/resources/r", {"content": "abcdef"}, format="json")
    api_key_create(tenant=alice, scopes="*")
    assert cap_counters_check(alice) == {}


def test_check_caps_finds_and_repairs_a_counter_edited_by_hand(
    alice: Tenant, charlie: Tenant, alice_client: SlopClient
) -> None:
    for key in ("a", "b"):
        alice_client.post("/memory", {"key": key, "value": 1}, format="json")
    CapCounter.objects.for_tenant(alice).filter(what="memory_items").update(used=40)

    with pytest.raises(CommandError, match="1 team"):
        call_command("billing_check_caps", stdout=(out := StringIO()))
    assert f"{alice.slug} memory_items: counter 40, counted 2 (wrong)" in out.getvalue()
    assert cap_usage(alice, "memory_items") == 40

    call_command("billing_check_caps", "--repair", stdout=StringIO())
    assert cap_usage(alice, "memory_items") == 2
    call_command("billing_check_caps", alice.slug, charlie.slug, stdout=(again := StringIO()))
    assert "all right" in again.getvalue()


def test_the_migration_sets_the_counters_from_the_rows_there_are(
    alice: Tenant, charlie: Tenant, make_key: Callable[..., Any]
) -> None:
    for tenant, count in ((alice, 3), (charlie, 1)):
        for index in range(count):
            memory_item_store(tenant=tenant, key=f"k{index}", value=index)
    executor = MigrationExecutor(connection)
    executor.migrate([("memory", "0001_initial")])  # drops the trigger and the counters
    assert not CapCounter.objects.unscoped().filter(what="memory_items").exists()
    memory_item_store(tenant=alice, key="made-meanwhile", value=1)  # no trigger: not counted

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert cap_usage(alice, "memory_items") == 4 and cap_usage(charlie, "memory_items") == 1
    memory_item_store(tenant=alice, key="after", value=1)  # the trigger is back
    assert cap_usage(alice, "memory_items") == 5
