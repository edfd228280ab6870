"""Schemathesis over every operation of /openapi.json against the real server.

Property-based: for each operation it generates requests from the documented parameters and bodies
(valid ones, then invalid ones) and checks every answer: no 5xx, a status code the operation
documents, a documented content type, and a body that matches the documented schema. The tenant is
one of its own with a full-scope key, so whatever the generated requests write (memory, resources,
webhook tools, chats) touches nobody else. Generation is derandomized and does not shrink: the same
examples every run, in bounded time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.test.utils import override_settings
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.agents.services import agent_create
from apps.billing.sync import plans_sync
from apps.memory.services import memory_item_store
from apps.resources.services import resource_create
from apps.tenants.models import Tenant
from apps.tenants.services import api_key_create
from tests.billing.fake_stripe import start_fake_stripe, stop_fake_stripe
from tests.billing.plans import seed_plans
from tests.e2e.conftest import LiveServer, start_server, stop_server
from tests.pay.conftest import TEST_SECRET_KEY, TEST_WEBHOOK_SECRET, stripe_env
from tests.pay.conftest import localstripe as localstripe  # the session fixture, reused

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

EXAMPLES_PER_MODE = {
    schemathesis.GenerationMode.POSITIVE: int(os.environ.get("SLOP_SCHEMATHESIS_POSITIVE", "25")),
    schemathesis.GenerationMode.NEGATIVE: int(os.environ.get("SLOP_SCHEMATHESIS_NEGATIVE", "10")),
}
# To reproduce one operation with many examples: SLOP_SCHEMATHESIS_ONLY="POST /memory" and the counts.
ONLY = os.environ.get("SLOP_SCHEMATHESIS_ONLY", "")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _describe(exc: BaseException) -> str:
    parts = [str(exc)]
    for inner in getattr(exc, "exceptions", ()):
        parts.append(_describe(inner))
    return "\n".join(parts)


def _run_operation(
    operation: Any, mode: schemathesis.GenerationMode, headers: dict[str, str], examples: int
) -> tuple[int, str | None]:
    ran = 0

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        nonlocal ran
        ran += 1
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

    try:
        check()
    except Unsatisfiable:  # nothing to make invalid: no parameters and no body (GET /healthz)
        return ran, None
    except (Exception, BaseExceptionGroup) as exc:  # a failed check: reported with the others below
        return ran, f"{operation.label} [{mode.value}]: {_describe(exc)}"
    return ran, None


@pytest.fixture(scope="module")
def stripe_server(
    django_db_setup: None,
    django_db_blocker: Any,
    tmp_path_factory: pytest.TempPathFactory,
    localstripe: str,
) -> Iterator[LiveServer]:
    """The real server with payments and billing configured (localstripe, behind the fake Stripe
    server for Checkout and Portal sessions), so /pay and /billing answer as in production instead
    of 503 payments_not_configured / billing_not_configured."""
    fake = start_fake_stripe(localstripe, {TEST_SECRET_KEY})
    env = {
        "STRIPE_SECRET_KEY": TEST_SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
        "STRIPE_API_BASE": fake.url,
        "STRIPE_LOCALSTRIPE_COMPAT": "true",
        "STRIPE_MAX_NETWORK_RETRIES": "0",
        "STRIPE_BILLING_WEBHOOK_SECRET": "whsec_schemathesis_billing",
        "SLOP_BILLING_SUCCESS_URL": "https://app.example.com/billing/done",
    }
    try:
        with django_db_blocker.unblock():
            seed_plans()  # the plans checkout sells, linked to prices at the fake Stripe
            with override_settings(**stripe_env(fake.url)):
                plans_sync()
            server = start_server(env, tmp_path_factory.mktemp("schemathesis-server"))
        yield server
        stop_server(server)
    finally:
        stop_fake_stripe(fake)


def test_every_operation_conforms_to_the_schema(stripe_server: LiveServer) -> None:
    slop_server = stripe_server
    tenant = Tenant.objects.create(slug="schemathesis", name="Schemathesis")
    headers = {"Authorization": f"Bearer {api_key_create(tenant=tenant, scopes='*').plaintext}"}
    # The objects the documented path examples name, so the explicit examples reach the success
    # paths (200 with a body) and not only the 404s of generated ids.
    memory_item_store(tenant=tenant, key="user_preference", value={"theme": "dark"})
    resource_create(tenant=tenant, resource_id="notes/hello", title="Hello", content="Hello notes")
    agent_create(tenant=tenant, agent_id="support", fields={"description": "Product questions"})
    schema = schemathesis.openapi.from_url(f"{slop_server.url}/openapi.json")
    started = time.monotonic()
    operations = examples = 0
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if ONLY and ONLY not in operation.label:
            continue
        operations += 1
        for mode, count in EXAMPLES_PER_MODE.items():
            ran, failure = _run_operation(operation, mode, headers, count)
            examples += ran
            if failure is not None:
                failures.append(failure)
    elapsed = time.monotonic() - started
    print(f"schemathesis: {operations} operations, {examples} examples, {elapsed:.0f} s")
    assert ONLY or operations >= 41
    assert not failures, "\n\n".join(failures)
