from __future__ import annotations

import os
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.tenants.authentication import authenticate_key, forget_keys
from apps.tenants.models import ApiKey, Membership, Tenant
from apps.tenants.services import api_key_create, tenant_create, tenant_public_scopes_set

DEMO_PUBLIC_SCOPES = ["chat.*", "tools.*", "memory.*", "resources.*"]


DEMO_USERNAME = "demo"


class Command(BaseCommand):
    help = (
        "Ensure the demo tenant, its full-scope key (kept in SLOP_DATA_DIR/demo_api_key) and its owner "
        "for the console, user 'demo' (password kept in SLOP_DATA_DIR/demo_console_password)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug="demo").first()
        if tenant is None:
            # Public (key-less) at /t/demo/, and at the root for loopback under make run: every
            # area of the seed but pay, so the reference clients work and nobody spends money.
            tenant = tenant_create(name="Demo", slug="demo")
            tenant_public_scopes_set(tenant=tenant, scopes=DEMO_PUBLIC_SCOPES)
        self._ensure_console_owner(tenant)
        self._ensure_key(tenant)

    def _ensure_console_owner(self, tenant: Tenant) -> None:
        """The demo team's owner, to sign in to the console at /console/ (a password generated once
        and kept with the data, like the key: no well-known default)."""
        port = os.environ.get("PORT", "8000")
        path = settings.DATA_DIR / "demo_console_password"
        user = get_user_model().objects.filter(username=DEMO_USERNAME).first()
        if user is None or not path.exists():
            password = secrets.token_urlsafe(12)
            if user is None:
                user = get_user_model().objects.create_user(DEMO_USERNAME, email="demo@example.com")
            user.set_password(password)
            user.save()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(password + "\n")
            path.chmod(0o600)
        Membership.objects.for_tenant(tenant).get_or_create(
            tenant=tenant, user=user, defaults={"role": Membership.Role.OWNER}
        )
        self.stdout.write(
            f"Console: http://127.0.0.1:{port}/console/ — user '{DEMO_USERNAME}', password in {path}: "
            f"{path.read_text().strip()}"
        )

    def _ensure_key(self, tenant: Tenant) -> None:
        path = settings.DATA_DIR / "demo_api_key"
        if path.exists():
            key = path.read_text().strip()
            try:
                if authenticate_key(key).tenant.pk == tenant.pk:
                    self.stdout.write(f"Demo tenant 'demo'; API key in {path}")
                    return
            except ApplicationError:
                pass
        # The key in the file is lost: revoke the demo keys made before it, so a re-made file never
        # piles keys up against the plan's cap on API keys (which would then refuse this one).
        stale = ApiKey.objects.for_tenant(tenant).filter(name="demo", revoked_at=None)
        prefixes = list(stale.values_list("prefix", flat=True))
        if prefixes:
            stale.update(revoked_at=timezone.now())
            forget_keys(prefixes=prefixes)  # an update sends no signal
        issued = api_key_create(tenant=tenant, scopes="*", name="demo")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(issued.plaintext + "\n")
        path.chmod(0o600)
        port = os.environ.get("PORT", "8000")
        self.stdout.write(
            "Demo tenant 'demo' with a full-scope API key (shown once, kept in "
            f"{path}):\n\n  {issued.plaintext}\n\n"
            f"  curl -H 'Authorization: Bearer {issued.plaintext}' http://127.0.0.1:{port}/info\n"
        )
