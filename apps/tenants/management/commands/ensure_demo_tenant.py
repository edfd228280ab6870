from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.tenants.authentication import authenticate_key, forget_keys
from apps.tenants.models import ApiKey, Tenant
from apps.tenants.services import api_key_create, tenant_create, tenant_public_scopes_set

DEMO_PUBLIC_SCOPES = ["chat.*", "tools.*", "memory.*", "resources.*"]


class Command(BaseCommand):
    help = "Ensure the demo tenant and its full-scope key (kept in SLOP_DATA_DIR/demo_api_key)."

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug="demo").first()
        if tenant is None:
            # Public (key-less) at /t/demo/, and at the root for loopback under make run: every
            # area of the seed but pay, so the reference clients work and nobody spends money.
            tenant = tenant_create(name="Demo", slug="demo")
            tenant_public_scopes_set(tenant=tenant, scopes=DEMO_PUBLIC_SCOPES)
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
