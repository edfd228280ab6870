from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.tools.webhook_server import WebhookServer, start_webhook_server


@pytest.fixture
def webhook_server() -> Iterator[WebhookServer]:
    server = start_webhook_server()
    yield server
    server.close()
