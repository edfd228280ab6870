"""Celery: Redis as the broker when REDIS_URL is set; tasks run in-process otherwise."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slop_platform.settings")

app = Celery("slop_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_configure.connect
def _refuse_bad_settings(sender: Any = None, **kwargs: Any) -> None:
    # Sent before Celery reads the Django settings: a misconfigured worker or beat exits with
    # one line instead of Celery's traceback (an import from the package would be too early).
    from slop_platform.startup import settings_or_exit

    settings_or_exit()
