from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Migrate, ensure the demo tenant and serve HTTP + WebSocket with Daphne, in one process "
        "(so the embedded PostgreSQL starts once and stops with it)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
        parser.add_argument("--no-demo", action="store_true", help="do not create the demo tenant")

    def handle(self, *args: Any, **options: Any) -> None:
        from daphne.cli import CommandLineInterface

        call_command("migrate", interactive=False, verbosity=0)
        if not options["no_demo"]:
            call_command("ensure_demo_tenant")
        self.stdout.write(f"Serving on http://{options['host']}:{options['port']} (Ctrl-C stops)")
        if settings.SLOP_DEMO_PUBLIC_LOOPBACK and not options["no_demo"]:
            self.stdout.write(
                "Key-less requests from this machine act on the demo tenant's public surface "
                "(SLOP_DEMO_PUBLIC_LOOPBACK=false turns it off)"
            )
        # No --proxy-headers: Daphne would take the client address from X-Forwarded-For, whoever
        # sent it. The platform reads that header itself, from SLOP_TRUSTED_PROXIES only.
        CommandLineInterface().run(
            ["-b", options["host"], "-p", str(options["port"]), "slop_platform.asgi:application"]
        )
