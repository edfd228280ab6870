"""The Python interface other apps use (the AI's memory tool): apps.memory.selectors.memory_query."""

from __future__ import annotations

import pytest

from apps.core.errors import ApplicationError
from apps.memory.selectors import memory_query
from apps.tenants.authentication import principal_for

pytestmark = pytest.mark.django_db


def test_memory_query_for_a_principal(alice, charlie, make_key, remember):
    remember(alice, {"user_preference": {"theme": "dark"}, "thread:t1": {"title": "Roadmap planning"}})
    remember(charlie, {"user_preference": {"theme": "light"}})
    principal = principal_for(f"Bearer {make_key(alice, 'memory.*')}", None, None)

    results = memory_query(principal=principal, query="theme settings", limit=1)
    assert results == [{"key": "user_preference", "value": {"theme": "dark"}, "score": results[0]["score"]}]
    assert [r["key"] for r in memory_query(principal=principal, query="planning", key_prefix="thread:")] == [
        "thread:t1"
    ]
    assert len(memory_query(principal=principal, query="anything", limit=500)) == 2  # held to 100
    assert memory_query(principal=principal, query="theme", min_score=1.0) == []


def test_memory_query_obeys_the_principals_scopes(alice, make_key, remember):
    remember(alice, {"user_preference": {"theme": "dark"}, "billing": {"plan": "team"}})
    narrowed = principal_for(f"Bearer {make_key(alice, 'memory.*')}", None, "memory.user.read")
    assert [r["key"] for r in memory_query(principal=narrowed, query="billing plan")] == ["user_preference"]
    # Filtering only: the 403 for a caller with no memory read scope is the view's declared check.
    nothing = principal_for(f"Bearer {make_key(alice, 'chat.*')}", None, None)
    assert memory_query(principal=nothing, query="billing plan") == []


def test_memory_query_refuses_an_empty_query(alice, make_key):
    principal = principal_for(f"Bearer {make_key(alice, 'memory.*')}", None, None)
    with pytest.raises(ApplicationError) as raised:
        memory_query(principal=principal, query="  ")
    assert raised.value.status == 400
