"""The raw-SQL snippet fetch of /resources/search reads chunk text of the caller's tenant only.

The rankers return (resource, chunk) ids; the resources and the snippets by chunk id are joined in
the same statement, bound to the tenant for both tables. Here a ranker is made to pair the
caller's own resource with a chunk id of another tenant's resource."""

from __future__ import annotations

import pytest

from apps.resources import search
from apps.resources.models import Resource, ResourceChunk
from apps.resources.services import resource_create

pytestmark = pytest.mark.django_db


def test_a_chunk_id_of_another_tenant_gives_no_snippet(alice, charlie, charlie_client, monkeypatch):
    resource_create(
        tenant=alice, resource_id="private/diary", title="Diary", content="The volcano password is hunter2."
    )
    resource_create(tenant=charlie, resource_id="notes/mine", title="Mine", content="Volcano notes.")
    mine = Resource.objects.for_tenant(charlie).get(path="notes/mine")
    alices_chunk = ResourceChunk.objects.unscoped().get(resource__path="private/diary")

    # The words ranking (a statement inside the search's one statement) pairs them.
    crafted = (
        "SELECT %s::bigint AS resource_id, %s::bigint AS chunk_id, 1.0::float8 AS rank",
        [mine.pk, alices_chunk.pk],
    )
    monkeypatch.setattr(search, "_words_statement", lambda **kwargs: crafted)
    response = charlie_client.get("/resources/search?q=volcano")

    assert response.status_code == 200
    assert [hit["id"] for hit in response.json()["results"]] == ["notes/mine"]
    assert "hunter2" not in response.content.decode()
