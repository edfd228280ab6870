"""WSGI entry point: Django's WSGI handler alone, with the platform's JSON last resort.

Not a layout of its own (it serves no stream or WebSocket): the plain-request half of
slop_platform.asgi, for bench/serving.py's comparison and for WSGI-only tooling.
"""

from __future__ import annotations

import os

import django

from slop_platform.startup import settings_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slop_platform.settings")
settings_or_exit()
django.setup(set_prefix=False)

from apps.core.asgi import JsonWSGIHandler  # noqa: E402

application = JsonWSGIHandler()
