"""Fixtures of the tenants tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import caches


@pytest.fixture
def frozen_rate_window(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """One rate-limit window for the whole test (a minute boundary mid-test would reset counts),
    with empty counters before and after."""
    monkeypatch.setattr("apps.tenants.throttling._clock", lambda: 1_800_000_030.0)
    caches["state"].clear()
    yield
    caches["state"].clear()
