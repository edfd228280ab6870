"""A tenant's public surface: key-less requests under /t/<slug>/ act with its public scopes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test.utils import override_settings
from rest_framework.test import APIClient

from apps.memory.models import MemoryItem
from apps.tenants.models import Membership, Tenant, validate_public_scopes
from apps.tenants.public import public_grant
from apps.tenants.scopes import Action
from apps.tenants.services import tenant_public_scopes_set
from tests.conftest import SlopClient

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_rate_window")]


def _post_memory(client: APIClient, base: str, key: str) -> int:
    return int(client.post(f"{base}/memory", {"key": key, "value": "v"}, format="json").status_code)


# --- the pay rule ----------------------------------------------------------------------------


def test_a_wildcard_grants_the_seed_areas_but_never_pay() -> None:
    granted = public_grant(["*"])
    for area in ("chat", "tools", "memory", "resources"):
        assert granted.allows(Action(area=area, permission="write", identifier="x"))
    assert not granted.allows(Action(area="pay", permission="execute"))
    assert not granted.allows(Action(area="pay", permission="read"))


def test_pay_only_when_named() -> None:
    assert public_grant(["pay.read"]).allows(Action(area="pay", permission="read"))
    assert not public_grant(["pay.read"]).allows(Action(area="pay", permission="execute"))
    assert public_grant(["*", "pay.*"]).allows(Action(area="pay", permission="execute"))


def test_public_scopes_are_validated_like_a_keys() -> None:
    validate_public_scopes(["chat.*", "tools.safe.*"])
    with pytest.raises(ValidationError):
        validate_public_scopes(["weather.read"])
    with pytest.raises(ValidationError):
        validate_public_scopes("chat.*")


# --- /t/<slug>/ --------------------------------------------------------------------------------


def test_key_less_requests_act_with_the_public_scopes(alice: Tenant) -> None:
    tenant_public_scopes_set(tenant=alice, scopes=["memory.*"])
    client = APIClient()
    assert _post_memory(client, f"/t/{alice.slug}", "greeting") == 200
    assert MemoryItem.objects.for_tenant(alice).filter(key="greeting").exists()
    got = client.get(f"/t/{alice.slug}/memory/greeting")
    assert got.status_code == 200 and got.json()["value"] == "v"
    # chat is not among alice's public scopes
    refused = client.get(f"/t/{alice.slug}/chat")
    assert refused.status_code == 403 and refused.json()["code"] == "scope_violation"


def test_no_public_scopes_unknown_or_inactive_is_401(alice: Tenant, charlie: Tenant) -> None:
    tenant_public_scopes_set(tenant=charlie, scopes=["*"])
    Tenant.objects.filter(pk=charlie.pk).update(is_active=False)
    client = APIClient()
    for slug in (alice.slug, "no-such-team", charlie.slug):
        response = client.get(f"/t/{slug}/memory")
        assert response.status_code == 401, slug
        body = response.json()
        assert body["code"] == "unauthenticated"
        assert body["error"].startswith(f"No public surface at /t/{slug}/")
    assert client.get(f"/t/{alice.slug}/info").status_code == 401
    # the root stays key-only
    assert client.get("/memory").status_code == 401
    assert MemoryItem.objects.unscoped().count() == 0


def test_the_scope_header_narrows_the_public_scopes(alice: Tenant) -> None:
    tenant_public_scopes_set(tenant=alice, scopes=["memory.*"])
    client = APIClient(HTTP_X_SLOP_SCOPE="memory.public.read")
    response = client.post(f"/t/{alice.slug}/memory", {"key": "public/x", "value": 1}, format="json")
    assert response.status_code == 403 and response.json()["required_scope"] == "memory.public/x.write"
    # the header can narrow, never widen
    widened = APIClient(HTTP_X_SLOP_SCOPE="chat.*").get(f"/t/{alice.slug}/chat")
    assert widened.status_code == 403
    assert not MemoryItem.objects.for_tenant(alice).exists()


def test_pay_is_refused_under_a_wildcard(alice: Tenant) -> None:
    tenant_public_scopes_set(tenant=alice, scopes=["*"])
    response = APIClient().post(f"/t/{alice.slug}/pay", {"amount": 10}, format="json")
    assert response.status_code == 403
    assert response.json()["required_scope"] == "pay.execute"


def test_a_key_under_another_tenants_prefix_is_refused(
    alice: Tenant, charlie: Tenant, client_for: Callable[..., SlopClient]
) -> None:
    tenant_public_scopes_set(tenant=alice, scopes=["memory.*"])
    response = client_for(charlie).get(f"/t/{alice.slug}/memory")
    assert response.status_code == 401 and response.json()["code"] == "unauthenticated"
    # a key of the tenant itself acts with its own scopes there (more than the public ones)
    assert client_for(alice).get(f"/t/{alice.slug}/chat").status_code == 200


def test_info_of_the_base_url_lists_the_public_surface(alice: Tenant) -> None:
    tenant_public_scopes_set(tenant=alice, scopes=["chat.*", "tools.*"])
    body = APIClient().get(f"/t/{alice.slug}/info").json()
    assert body["tenant"]["slug"] == alice.slug
    assert body["public_surface"]["base_url"] == f"/t/{alice.slug}"
    assert body["public_surface"]["scopes"] == ["chat.*", "tools.*"]
    assert {"path": "/chat"}.items() <= next(e for e in body["endpoints"] if e["path"] == "/chat").items()
    anonymous = APIClient().get("/info").json()
    assert "tenant" not in anonymous and "public_surface" not in anonymous


def test_errors_below_the_prefix_are_json(alice: Tenant) -> None:
    tenant_public_scopes_set(tenant=alice, scopes=["*"])
    response = APIClient().get(f"/t/{alice.slug}/nowhere")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


@override_settings(ANON_RATE_LIMIT_PER_MINUTE=2)
def test_the_public_surface_is_rate_limited_per_address(alice: Tenant) -> None:
    tenant_public_scopes_set(tenant=alice, scopes=["memory.*"])
    one = APIClient(REMOTE_ADDR="198.51.100.7")
    statuses = [one.get(f"/t/{alice.slug}/memory").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert APIClient(REMOTE_ADDR="198.51.100.8").get(f"/t/{alice.slug}/memory").status_code == 200


# --- the demo tenant at the root, from loopback (make run) ------------------------------------


@pytest.fixture
def demo(tmp_path: object, settings: object) -> Tenant:
    settings.DATA_DIR = tmp_path  # type: ignore[attr-defined]
    call_command("ensure_demo_tenant", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return Tenant.objects.get(slug="demo")


def test_ensure_demo_tenant_opens_everything_but_pay(demo: Tenant) -> None:
    assert demo.public_scopes == ["chat.*", "tools.*", "memory.*", "resources.*"]


def test_the_demo_team_has_an_owner_who_can_sign_in_to_the_console(demo: Tenant, settings: object) -> None:
    from django.contrib.auth import authenticate

    password = (settings.DATA_DIR / "demo_console_password").read_text().strip()  # type: ignore[attr-defined]
    user = authenticate(username="demo", password=password)
    assert user is not None
    assert Membership.objects.for_tenant(demo).get(user=user).role == "owner"
    # Run again (every make run): the same password, still one membership.
    call_command("ensure_demo_tenant", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert authenticate(username="demo", password=password) is not None
    assert Membership.objects.for_tenant(demo).filter(user=user).count() == 1


@override_settings(SLOP_DEMO_PUBLIC_LOOPBACK=True)
def test_loopback_key_less_requests_act_on_the_demo_surface(demo: Tenant) -> None:
    for address in ("127.0.0.1", "::1"):
        local = APIClient(REMOTE_ADDR=address)
        assert _post_memory(local, "", f"from-{address}") == 200
    assert MemoryItem.objects.for_tenant(demo).count() == 2
    assert APIClient(REMOTE_ADDR="127.0.0.1").get("/info").json()["tenant"]["slug"] == "demo"
    # another machine, even one claiming loopback in a header, is anonymous
    remote = APIClient(REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert remote.get("/memory").status_code == 401
    assert "tenant" not in remote.get("/info").json()


def test_the_demo_surface_is_off_unless_asked_for(demo: Tenant) -> None:
    assert APIClient(REMOTE_ADDR="127.0.0.1").get("/memory").status_code == 401
    # /t/demo/ is the demo tenant's public surface wherever the client is
    remote = APIClient(REMOTE_ADDR="203.0.113.5")
    assert remote.get("/t/demo/memory").status_code == 200
    calculated = remote.post("/t/demo/tools/calculator", {"expression": "2 + 2"}, format="json")
    assert calculated.json() == {"result": 4}  # the README's line


@override_settings(SLOP_DEMO_PUBLIC_LOOPBACK=True)
def test_a_demo_tenant_with_empty_public_scopes_serves_nothing_at_the_root(demo: Tenant) -> None:
    tenant_public_scopes_set(tenant=demo, scopes=[])
    assert APIClient(REMOTE_ADDR="127.0.0.1").get("/memory").status_code == 401


def test_job_urls_stay_on_the_public_surface(alice: Tenant) -> None:
    tenant_public_scopes_set(tenant=alice, scopes=["tools.*"])
    client = APIClient()
    started = client.post(
        f"/t/{alice.slug}/tools/calculator?async=true", {"expression": "1+1"}, format="json"
    )
    assert started.status_code == 202, started.content
    status_url = started.json()["status_url"]
    assert status_url.startswith(f"/t/{alice.slug}/tools/jobs/job_")
    job = client.get(status_url)
    assert job.status_code == 200 and job.json()["status_url"] == status_url
    # the root keeps its own URLs
    from django.urls import get_script_prefix

    assert get_script_prefix() == "/"
