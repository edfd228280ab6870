"""Plan caps on what a team keeps — memory items, resource storage, API keys, members — hold through
the real doors: past the cap, an addition is a 402 quota_exceeded naming the limit, the usage and
where to upgrade, and nothing is stored; overwrites and shrinking writes are never refused; data
over a lowered cap stays; concurrent additions at the edge overshoot by at most one; other
tenants go on."""

from __future__ import annotations

import threading
from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from apps.billing.caps import cap_usage, ensure_room
from apps.core.errors import ApplicationError
from apps.memory.models import MemoryItem
from apps.resources.models import Resource
from apps.tenants.models import ApiKey, Membership, Tenant
from apps.tenants.services import api_key_create
from tests.conftest import SlopClient

pytestmark = pytest.mark.django_db


def remember(client: Any, key: str, value: Any = "v") -> Any:
    return client.post("/memory", {"key": key, "value": value}, format="json")


def add_resource(client: Any, resource_id: str, content: str) -> Any:
    return client.post(
        "/resources", {"id": resource_id, "title": resource_id, "content": content}, format="json"
    )


def assert_cap_refusal(response: Any, *, unit: str, limit: int, used: int) -> dict[str, Any]:
    assert response.status_code == 402, response.content
    body = response.json()
    assert body["code"] == "quota_exceeded" and body["status"] == 402
    assert body["unit"] == unit and body["scope"] == "tenant"
    assert body["limit"] == limit and body["used"] == used
    assert body["upgrade_url"] == "/billing" and "/billing" in body["error"]
    assert f"{limit:,}" in body["error"]
    return body


# --- memory items --------------------------------------------------------------------------------


def test_a_new_memory_key_past_the_cap_is_a_402_and_nothing_is_stored(
    alice: Tenant, alice_client: SlopClient, put_on_plan: Callable[..., Any]
) -> None:
    put_on_plan(alice, included_memory_items=2)
    assert remember(alice_client, "a").status_code == 200
    assert remember(alice_client, "b").status_code == 200

    refused = remember(alice_client, "c")

    body = assert_cap_refusal(refused, unit="memory_items", limit=2, used=2)
    assert "memory items" in body["error"]
    assert alice_client.get("/memory/c").status_code == 404
    assert sorted(MemoryItem.objects.for_tenant(alice).values_list("key", flat=True)) == ["a", "b"]


def test_overwriting_an_existing_key_at_the_cap_adds_nothing(
    alice: Tenant, alice_client: SlopClient, put_on_plan: Callable[..., Any]
) -> None:
    put_on_plan(alice, included_memory_items=1)
    assert remember(alice_client, "prefs", {"theme": "light"}).status_code == 200

    assert remember(alice_client, "prefs", {"theme": "dark"}).status_code == 200
    assert alice_client.put("/memory/prefs", {"value": "x"}, format="json").status_code == 200

    assert alice_client.get("/memory/prefs").json()["value"] == "x"
    # Deleting frees room: the next new key fits.
    assert alice_client.delete("/memory/prefs").status_code == 200
    assert remember(alice_client, "other").status_code == 200


def test_the_memory_write_tool_is_held_to_the_cap_too(
    alice: Tenant, alice_client: SlopClient, put_on_plan: Callable[..., Any]
) -> None:
    put_on_plan(alice, included_memory_items=0)
    response = alice_client.post("/tools/memory_write", {"key": "k", "value": "v"}, format="json")
    assert response.status_code == 402 and response.json()["code"] == "quota_exceeded"
    assert not MemoryItem.objects.for_tenant(alice).exists()


def test_data_over_a_lowered_cap_stays_and_only_additions_are_refused(
    alice: Tenant, alice_client: SlopClient, put_on_plan: Callable[..., Any]
) -> None:
    for key in ("a", "b", "c"):
        assert remember(alice_client, key).status_code == 200
    put_on_plan(alice, included_memory_items=1)  # lowered below what the team keeps

    assert_cap_refusal(remember(alice_client, "d"), unit="memory_items", limit=1, used=3)
    assert MemoryItem.objects.for_tenant(alice).count() == 3  # nothing deleted
    assert alice_client.get("/memory/a").status_code == 200
    assert remember(alice_client, "b", "new value").status_code == 200  # an overwrite is fine


def test_an_unlimited_cap_never_refuses(
    alice: Tenant, alice_client: SlopClient, put_on_plan: Callable[..., Any]
) -> None:
    put_on_plan(alice, included_memory_items=None, included_resource_bytes=None)
    for index in range(5):
        assert remember(alice_client, f"k{index}").status_code == 200
    assert add_resource(alice_client, "big", "x" * 50_000).status_code in (201, 202)


def test_other_tenants_are_unaffected_by_a_full_team(
    alice: Tenant,
    charlie: Tenant,
    alice_client: SlopClient,
    charlie_client: SlopClient,
    put_on_plan: Callable[..., Any],
) -> None:
    put_on_plan(alice, included_memory_items=0, included_resource_bytes=0)
    put_on_plan(charlie, included_memory_items=1, included_resource_bytes=10)
    assert remember(alice_client, "k").status_code == 402
    assert add_resource(alice_client, "r", "abc").status_code == 402

    assert remember(charlie_client, "k").status_code == 200
    assert add_resource(charlie_client, "r", "abc").status_code == 201
    assert not MemoryItem.objects.for_tenant(alice).exists()
    assert cap_usage(charlie, "resource_bytes") == 3


# --- resource storage ----------------------------------------------------------------------------


def test_a_resource_past_the_storage_cap_is_a_402_and_nothing_is_stored(
    alice: Tenant, alice_client: SlopClient, put_on_plan: Callable[..., Any]
) -> None:
    put_on_plan(alice, included_resource_bytes=10)
    assert add_resource(alice_client, "notes/one", "12345").status_code == 201

    refused = add_resource(alice_client, "notes/two", "123456")  # 5 + 6 > 10

    body = assert_cap_refusal(refused, unit="resource_bytes", limit=10, used=5)
    assert body["adding"] == 6
    assert alice_client.get("/resources/notes/two").status_code == 404
    assert add_resource(alice_client, "notes/two", "12345").status_code == 201  # exactly at the cap


def test_bytes_are_utf8_bytes_not_characters(
    alice: Tenant, alice_client: SlopClient, put_on_plan: Callable[..., Any]
) -> None:
    put_on_plan(alice, included_resource_bytes=5)
    refused = add_resource(alice_client, "accents", "ééé")  # 3 characters, 6 bytes
    assert_cap_refusal(refused, unit="resource_bytes", limit=5, used=0)


def test_an_update_counts_the_size_difference(
    alice: Tenant, alice_client: SlopClient, put_on_plan: Callable[..., Any]
) -> None:
    put_on_plan(alice, included_resource_bytes=10)
    assert add_resource(alice_client, "doc", "12345678").status_code == 201

    grown = alice_client.put("/resources/doc", {"content": "12345678901"}, format="json")  # +3 > 10
    assert_cap_refusal(grown, unit="resource_bytes", limit=10, used=8)
    assert Resource.objects.for_tenant(alice).get(path="doc").content == "12345678"

    assert alice_client.put("/resources/doc", {"content": "1234567890"}, format="json").status_code == 200
    # Title and metadata changes add no content bytes, and shrinking always passes.
    assert alice_client.put("/resources/doc", {"title": "renamed"}, format="json").status_code == 200
    assert alice_client.put("/resources/doc", {"content": "1"}, format="json").status_code == 200
    assert cap_usage(alice, "resource_bytes") == 1


def test_an_upload_is_held_to_the_storage_cap(
    alice: Tenant, alice_client: SlopClient, put_on_plan: Callable[..., Any]
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    put_on_plan(alice, included_resource_bytes=20)
    upload = SimpleUploadedFile("notes.txt", b"x" * 21, content_type="text/plain")
    refused = alice_client.post("/resources", {"id": "up/notes", "file": upload}, format="multipart")
    assert_cap_refusal(refused, unit="resource_bytes", limit=20, used=0)
    assert not Resource.objects.for_tenant(alice).exists()


def test_a_resource_over_a_lowered_cap_may_shrink_but_not_grow(
    alice: Tenant, alice_client: SlopClient, put_on_plan: Callable[..., Any]
) -> None:
    assert add_resource(alice_client, "doc", "x" * 100).status_code == 201
    put_on_plan(alice, included_resource_bytes=10)
    assert alice_client.put("/resources/doc", {"content": "x" * 101}, format="json").status_code == 402
    assert alice_client.put("/resources/doc", {"content": "x" * 50}, format="json").status_code == 200
    assert Resource.objects.for_tenant(alice).get(path="doc").content == "x" * 50


# --- API keys ------------------------------------------------------------------------------------


def test_api_keys_past_the_cap_are_refused_by_every_way_to_make_one(
    alice: Tenant, charlie: Tenant, put_on_plan: Callable[..., Any]
) -> None:
    put_on_plan(alice, included_api_keys=2)
    api_key_create(tenant=alice, scopes="*")
    api_key_create(tenant=alice, scopes="*")

    with pytest.raises(ApplicationError) as refused:
        api_key_create(tenant=alice, scopes="*")
    assert refused.value.status == 402 and refused.value.code == "quota_exceeded"
    assert refused.value.extra["unit"] == "api_keys" and refused.value.extra["limit"] == 2
    with pytest.raises(CommandError, match="2 of the 2 active API keys"):
        call_command("create_api_key", alice.slug, "--scopes", "chat.*", stdout=StringIO())
    assert ApiKey.objects.for_tenant(alice).count() == 2
    # Charlie's team has its own allowance.
    call_command("create_api_key", charlie.slug, "--scopes", "chat.*", stdout=StringIO())


def test_revoked_and_expired_keys_do_not_count(alice: Tenant, put_on_plan: Callable[..., Any]) -> None:
    from datetime import timedelta

    from django.utils import timezone

    put_on_plan(alice, included_api_keys=1)
    first = api_key_create(tenant=alice, scopes="*").api_key
    first.revoked_at = timezone.now()
    first.save(update_fields=["revoked_at"])
    second = api_key_create(tenant=alice, scopes="*").api_key
    second.expires_at = timezone.now() - timedelta(seconds=1)
    second.save(update_fields=["expires_at"])
    api_key_create(tenant=alice, scopes="*")
    assert cap_usage(alice, "api_keys") == 1


def test_the_admin_shows_the_key_cap_on_the_form(
    alice: Tenant, admin_client: Any, put_on_plan: Callable[..., Any]
) -> None:
    put_on_plan(alice, included_api_keys=0)
    response = admin_client.post(
        "/admin/tenants/apikey/add/",
        {
            "tenant": alice.pk,
            "name": "ops",
            "scopes_text": "*",
            "expires_in_days": "",
            "monthly_token_cap": "",
        },
    )
    assert response.status_code == 200  # the form again, with the reason
    assert "Quota exceeded" in response.content.decode() and "API keys" in response.content.decode()
    assert not ApiKey.objects.for_tenant(alice).exists()


# --- members -------------------------------------------------------------------------------------


def test_members_past_the_cap_are_refused(alice: Tenant, put_on_plan: Callable[..., Any]) -> None:
    put_on_plan(alice, included_members=2)
    users = [get_user_model().objects.create_user(username=f"user{i}") for i in range(3)]
    for user in users[:2]:
        with transaction.atomic():
            ensure_room(alice, "members")
            Membership.objects.create(tenant=alice, user=user)

    with pytest.raises(ApplicationError) as refused, transaction.atomic():
        ensure_room(alice, "members")
        Membership.objects.create(tenant=alice, user=users[2])
    assert refused.value.status == 402 and refused.value.extra == {
        "limit": 2,
        "used": 2,
        "adding": 1,
        "scope": "tenant",
        "unit": "members",
        "upgrade_url": "/billing",
    }
    assert "2 of the 2 members" in refused.value.message
    assert Membership.objects.for_tenant(alice).count() == 2


def test_an_unknown_cap_is_a_programming_error(alice: Tenant) -> None:
    with pytest.raises(ValueError, match="memory_items"):
        ensure_room(alice, "widgets")


# --- concurrency ---------------------------------------------------------------------------------


def _race(count: int, work: Callable[[int], int]) -> list[int]:
    barrier = threading.Barrier(count)
    statuses: list[int] = []
    lock = threading.Lock()

    def one(index: int) -> None:
        try:
            barrier.wait()
            status = work(index)
            with lock:
                statuses.append(status)
        finally:
            connection.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return statuses


@pytest.mark.django_db(transaction=True)
def test_concurrent_new_memory_keys_at_the_edge_do_not_overshoot(
    alice: Tenant, make_key: Callable[..., str], put_on_plan: Callable[..., Any]
) -> None:
    key = make_key(alice)
    put_on_plan(alice, included_memory_items=5)
    client = SlopClient().with_key(key)
    for index in range(4):
        assert remember(client, f"before{index}").status_code == 200  # one left

    statuses = _race(12, lambda i: remember(SlopClient().with_key(key), f"race{i}").status_code)

    assert sorted(statuses) == [200] + [402] * 11, statuses
    assert MemoryItem.objects.for_tenant(alice).count() == 5  # overshoot: none


@pytest.mark.django_db(transaction=True)
def test_concurrent_resources_at_the_edge_do_not_overshoot(
    alice: Tenant, make_key: Callable[..., str], put_on_plan: Callable[..., Any]
) -> None:
    key = make_key(alice)
    put_on_plan(alice, included_resource_bytes=100)
    assert add_resource(SlopClient().with_key(key), "base", "x" * 70).status_code == 201  # 30 left

    statuses = _race(10, lambda i: add_resource(SlopClient().with_key(key), f"r{i}", "y" * 20).status_code)

    assert sorted(statuses) == [201] + [402] * 9, statuses
    assert cap_usage(alice, "resource_bytes") == 90


@pytest.mark.django_db(transaction=True)
def test_concurrent_api_keys_at_the_edge_do_not_overshoot(
    alice: Tenant, put_on_plan: Callable[..., Any]
) -> None:
    put_on_plan(alice, included_api_keys=3)
    api_key_create(tenant=alice, scopes="*")

    def make(index: int) -> int:
        try:
            api_key_create(tenant=alice, scopes="*", name=f"k{index}")
            return 201
        except ApplicationError as exc:
            return exc.status

    statuses = _race(10, make)

    assert sorted(statuses) == [201, 201] + [402] * 8, statuses
    assert ApiKey.objects.for_tenant(alice).count() == 3


# --- GET /billing --------------------------------------------------------------------------------


def test_billing_shows_every_cap_with_used_against_included(
    alice: Tenant,
    charlie: Tenant,
    alice_client: SlopClient,
    charlie_client: SlopClient,
    put_on_plan: Callable[..., Any],
) -> None:
    put_on_plan(
        alice, included_memory_items=10, included_resource_bytes=1000, included_api_keys=5, included_members=4
    )
    remember(alice_client, "a")
    remember(alice_client, "b")
    remember(alice_client, "a", "overwritten")
    add_resource(alice_client, "doc", "héllo")  # 6 bytes
    revoked = api_key_create(tenant=alice, scopes="*").api_key
    ApiKey.objects.for_tenant(alice).filter(pk=revoked.pk).update(revoked_at="2026-01-01T00:00:00Z")
    Membership.objects.create(tenant=alice, user=get_user_model().objects.create_user(username="ann"))

    billing = alice_client.get("/billing").json()

    assert {k: billing["included"][k] for k in ("memory_items", "resource_bytes", "api_keys", "members")} == {
        "memory_items": 10,
        "resource_bytes": 1000,
        "api_keys": 5,
        "members": 4,
    }
    assert {k: billing["used"][k] for k in ("memory_items", "resource_bytes", "api_keys", "members")} == {
        "memory_items": 2,
        "resource_bytes": 6,
        "api_keys": 1,  # the client's own; the revoked one does not count
        "members": 1,
    }
    other = charlie_client.get("/billing").json()["used"]
    assert (other["memory_items"], other["resource_bytes"], other["members"]) == (0, 0, 0)


@pytest.mark.django_db(transaction=True)
def test_concurrent_writes_of_one_new_key_at_the_edge_all_store(
    alice: Tenant, make_key: Callable[..., str], put_on_plan: Callable[..., Any]
) -> None:
    key = make_key(alice)
    put_on_plan(alice, included_memory_items=2)
    assert remember(SlopClient().with_key(key), "before").status_code == 200  # one left

    statuses = _race(6, lambda i: remember(SlopClient().with_key(key), "same", f"v{i}").status_code)

    # The first makes the key; the others, waiting on the cap's lock, find it made: overwrites.
    assert statuses == [200] * 6, statuses
    assert MemoryItem.objects.for_tenant(alice).count() == 2


def test_the_memory_admin_shows_the_cap_on_the_form(
    alice: Tenant, admin_client: Any, put_on_plan: Callable[..., Any]
) -> None:
    put_on_plan(alice, included_memory_items=0)
    response = admin_client.post(
        "/admin/memory/memoryitem/add/", {"tenant": alice.pk, "key": "k", "value": '"v"'}
    )
    assert response.status_code == 200 and "Quota exceeded" in response.content.decode()
    assert not MemoryItem.objects.for_tenant(alice).exists()


def test_the_resources_admin_shows_the_cap(
    alice: Tenant, admin_client: Any, put_on_plan: Callable[..., Any]
) -> None:
    put_on_plan(alice, included_resource_bytes=3)
    response = admin_client.post(
        "/admin/resources/resource/add/",
        {
            "tenant": alice.pk,
            "path": "doc",
            "title": "Doc",
            "type": "document",
            "content": "four",
            "metadata": "{}",
        },
        follow=True,
    )
    assert "Quota exceeded" in response.content.decode()
    assert not Resource.objects.for_tenant(alice).exists()


def test_the_demo_key_remade_again_and_again_never_reaches_the_key_cap(
    tmp_path: Any, put_on_plan: Callable[..., Any]
) -> None:
    from django.test.utils import override_settings

    with override_settings(DATA_DIR=tmp_path):
        call_command("ensure_demo_tenant", stdout=StringIO())
        demo = Tenant.objects.get(slug="demo")
        put_on_plan(demo, included_api_keys=2)
        for _ in range(3):
            (tmp_path / "demo_api_key").unlink()  # the key is lost: a new one replaces it
            call_command("ensure_demo_tenant", stdout=StringIO())
    assert cap_usage(demo, "api_keys") == 1
    assert ApiKey.objects.for_tenant(demo).filter(revoked_at=None).get().name == "demo"
