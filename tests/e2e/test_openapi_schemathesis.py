"""Schemathesis over every operation of /openapi.json against the real server.

Property-based: for each operation it generates requests from the documented parameters and bodies
(valid ones and, in negative mode, invalid ones) and checks every answer: no 5xx, a status code the
operation documents, a documented content type, and a body that matches the documented schema.
The tenant is one of its own with a full-scope key, so whatever the generated requests write
(memory, resources, webhook tools, chats) touches nobody else.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.tenants.models import Tenant
from apps.tenants.services import api_key_create
from tests.e2e.conftest import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MAX_EXAMPLES = 12
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def api_schema(slop_server: LiveServer) -> Any:
    return schemathesis.openapi.from_url(f"{slop_server.url}/openapi.json")


@pytest.fixture
def full_scope_key(slop_server: LiveServer) -> str:
    tenant = Tenant.objects.create(slug="schemathesis", name="Schemathesis")
    return api_key_create(tenant=tenant, scopes="*").plaintext


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_conforms(case: Any, full_scope_key: str, slop_server: LiveServer) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {full_scope_key}"}, checks=CHECKS, timeout=30
    )
