"""localstripe (a stateful fake Stripe server from PyPI) on a free port, and the official SDK at it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe
from django.test.utils import override_settings

from tests.conftest import free_port, wait_for_port

TEST_SECRET_KEY = "sk_test_slop_platform"
TEST_WEBHOOK_SECRET = "whsec_slop_platform_test"

# localstripe pickles its whole store to /tmp/localstripe.pickle on every write (shared by every
# instance on the machine, and slower with each object). Our instances start from scratch and
# keep their state in memory only.
_RUNNER = (
    "import sys; from localstripe import resources, server; "
    "resources.Store.dump_to_disk = lambda self: None; "
    "sys.argv = ['localstripe', '--port', sys.argv[1], '--from-scratch']; server.start()"
)


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = (tmp_path_factory.mktemp("localstripe") / "localstripe.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", _RUNNER, str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for_port(port, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def stripe_env(localstripe_url: str) -> dict[str, Any]:
    return {
        "STRIPE_SECRET_KEY": TEST_SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
        "STRIPE_API_BASE": localstripe_url,
        "STRIPE_LOCALSTRIPE_COMPAT": True,
        "STRIPE_MAX_NETWORK_RETRIES": 0,
        "STRIPE_TIMEOUT_SECONDS": 10.0,
    }


@pytest.fixture
def stripe_configured(localstripe: str) -> Iterator[str]:
    """The platform's Stripe key set and pointed at localstripe."""
    with override_settings(**stripe_env(localstripe)):
        yield localstripe


@pytest.fixture
def stripe_client(localstripe: str) -> stripe.StripeClient:
    """The test's own view of localstripe, to check what was really charged."""
    return stripe.StripeClient(TEST_SECRET_KEY, base_addresses={"api": localstripe})


def card_payment_method(client: stripe.StripeClient, number: str) -> str:
    method = client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
    )
    return str(method.id)


THREE_D_SECURE_CARD = "4000002500003155"


def payment_intents_for(client: stripe.StripeClient, transaction_id: str) -> list[dict[str, Any]]:
    """Every PaymentIntent localstripe holds for one of our payments (found by its metadata)."""
    intents = client.v1.payment_intents.list(params={"limit": 100}).to_dict()["data"]
    return [i for i in intents if (i.get("metadata") or {}).get("slop_transaction_id") == transaction_id]


def register_webhook(localstripe_url: str, name: str, url: str, secret: str) -> None:
    response = httpx.post(
        f"{localstripe_url}/_config/webhooks/{name}", data={"url": url, "secret": secret}, timeout=10
    )
    response.raise_for_status()
