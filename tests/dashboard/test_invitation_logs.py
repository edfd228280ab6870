"""An invitation link's token never reaches a log line: not granian's access line for the link
itself or for the "sign in to accept" page (whose ?next= carries it URL-encoded), not the
platform's log lines (an error on the page names its path), in plain or JSON format. The link
keeps working."""

from __future__ import annotations

import logging
import re
import sys

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.core.observability.logs import JsonFormatter
from apps.core.redaction import RedactingFormatter, install_access_log
from apps.tenants.models import Membership, Tenant
from apps.tenants.teams import invitation_create
from slop_platform.web import ACCESS_LOG_FORMAT
from tests.dashboard.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def access_line(path: str, query: str = "") -> str:
    """What granian's access logger writes for a request, through the filter the platform installs."""
    install_access_log()
    access = logging.getLogger("granian.access")
    fields = {"time": "2026-12-01 12:00:00", "addr": "203.0.113.9", "method": "GET", "path": path}
    message = ACCESS_LOG_FORMAT % {
        **fields,
        "query_string": query,
        "protocol": "HTTP/1.1",
        "status": 200,
        "dt_ms": 1.5,
    }
    record = logging.LogRecord("granian.access", logging.INFO, __file__, 1, message, None, None)
    assert all(f.filter(record) for f in access.filters)
    return record.getMessage()


def test_the_token_is_in_no_access_line_or_log_line_and_the_link_works(alice: Tenant) -> None:
    issued = invitation_create(tenant=alice, email="ivy@example.com", role="member", invited_by_id=None)
    link = f"/console/invite/{issued.token}"

    page = Client().get(link)
    assert page.status_code == 200
    sign_in = re.search(r'href="(/console/login)\?next=([^"]+)"', page.content.decode())
    assert sign_in and issued.token in sign_in.group(2)  # the token, URL-encoded, in ?next=

    lines = [access_line(link), access_line(sign_in.group(1), sign_in.group(2))]
    try:
        raise RuntimeError(f"failed rendering {link}")
    except RuntimeError:
        error = logging.LogRecord(
            "slop.errors", logging.ERROR, __file__, 1, "Unhandled error on %s", (link,), sys.exc_info()
        )
    error.request_id = "req_1"
    lines += [RedactingFormatter("%(message)s").format(error), JsonFormatter().format(error)]
    for line in lines:
        assert issued.token not in line, line
        assert "[redacted]" in line, line

    joined = Client().post(link, {"username": "ivy", "password1": PASSWORD, "password2": PASSWORD})
    assert joined.status_code == 302
    user = get_user_model().objects.get(username="ivy")
    assert Membership.objects.for_tenant(alice).filter(user=user).exists()
