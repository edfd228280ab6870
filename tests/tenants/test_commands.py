"""The operators' management commands."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.tenants.authentication import authenticate_key
from apps.tenants.models import ApiKey, Tenant

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


def test_create_tenant_prints_its_slug() -> None:
    assert run("create_tenant", "Acme Robotics") == "acme-robotics"
    assert run("create_tenant", "Acme Robotics") == "acme-robotics-2"
    assert Tenant.objects.count() == 2


def test_create_api_key_prints_only_the_key() -> None:
    run("create_tenant", "Acme")
    output = run(
        "create_api_key", "acme", "--scopes", "chat.*,memory.*", "--name", "ci", "--expires-in-days", "30"
    )
    assert "\n" not in output and output.startswith("slop_")
    record = authenticate_key(output)
    assert record.tenant.slug == "acme"
    assert record.granted.strings() == ["chat.*", "memory.*"]
    key = ApiKey.objects.for_tenant(record.tenant).get()
    assert key.name == "ci" and key.expires_at is not None


def test_create_api_key_refuses_bad_scopes_and_unknown_tenants() -> None:
    run("create_tenant", "Acme")
    with pytest.raises(CommandError, match=r"Invalid scope 'memory\.user\.delete'"):
        run("create_api_key", "acme", "--scopes", "memory.user.delete")
    with pytest.raises(CommandError, match="No tenant"):
        run("create_api_key", "nobody", "--scopes", "*")


def test_revoke_api_key_by_prefix() -> None:
    run("create_tenant", "Acme")
    key = run("create_api_key", "acme", "--scopes", "*")
    prefix = key.split("_")[2]
    assert run("revoke_api_key", prefix).startswith(f"revoked {prefix}")
    assert ApiKey.objects.unscoped().get(prefix=prefix).revoked_at is not None
    with pytest.raises(CommandError):
        run("revoke_api_key", "zzzzzzzz")


def test_create_tenant_with_a_public_surface() -> None:
    assert run("create_tenant", "Open Team", "--public-scopes", "chat.*,tools.safe.*") == "open-team"
    assert Tenant.objects.get(slug="open-team").public_scopes == ["chat.*", "tools.safe.*"]
    with pytest.raises(CommandError, match="weather"):
        run("create_tenant", "Bad Team", "--public-scopes", "weather.read")
    assert not Tenant.objects.filter(name="Bad Team").exists()  # nothing half-made
