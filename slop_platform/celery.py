"""Celery: Redis as the broker when REDIS_URL is set; tasks run in-process otherwise."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slop_platform.settings")

app = Celery("slop_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
