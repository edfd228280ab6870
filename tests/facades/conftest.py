"""The doors' end-to-end tests drive the real server (tests/e2e/conftest.py)."""

from tests.e2e.conftest import slop_server  # noqa: F401 - the fixture, for tests/facades/test_mcp.py
