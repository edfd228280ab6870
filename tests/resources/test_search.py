"""GET /resources/search: hybrid ranking, snippets, filters, read-your-writes, completeness."""

from __future__ import annotations

import pytest
from django.test import override_settings

from apps.resources.services import resource_create

pytestmark = pytest.mark.django_db


def add(client, resource_id, title, content="", type="article"):
    response = client.post(
        "/resources", {"id": resource_id, "title": title, "type": type, "content": content}, format="json"
    )
    assert response.status_code == 201, response.json()


@pytest.fixture
def astronomy(alice_client):
    add(
        alice_client,
        "mars-101",
        "Mars: The Red Planet",
        "Mars is the fourth planet from the Sun and the second-smallest planet in the Solar System.",
    )
    add(
        alice_client,
        "solar-system",
        "Our Solar System",
        "The Sun and everything that orbits it: Mercury, Venus, Earth, Mars, Jupiter, Saturn, Neptune.",
    )
    add(alice_client, "notes/bread", "Bread", "Flour, water, salt and yeast.", type="note")
    return alice_client


def test_seed_example_mars_first(astronomy):
    response = astronomy.get("/resources/search?q=mars")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [item["id"] for item in results][:2] == ["mars-101", "solar-system"]
    first = results[0]
    assert first["title"] == "Mars: The Red Planet"
    assert first["type"] == "article"
    assert 0 < first["score"] <= 1
    assert results[0]["score"] > results[1]["score"]
    assert all(0 <= item["score"] <= 1 for item in results)
    assert "Mars" in first["snippet"]


def test_meaning_finds_paraphrases(astronomy):
    results = astronomy.get("/resources/search?q=baking a loaf at home").json()["results"]
    assert results[0]["id"] == "notes/bread"


def test_snippet_is_around_the_match(alice_client):
    filler = " ".join(["Lorem ipsum dolor sit amet."] * 60)
    add(alice_client, "long", "A long text", f"{filler} The secret ingredient is saffron. {filler}")
    result = alice_client.get("/resources/search?q=saffron").json()["results"][0]
    assert result["id"] == "long"
    assert "saffron" in result["snippet"]
    assert len(result["snippet"]) < 400


def test_filters_type_prefix_and_limit(astronomy):
    add(astronomy, "notes/mars-trip", "Trip notes", "We watched Mars rise over the hills.", type="note")
    by_type = astronomy.get("/resources/search?q=mars&type=note").json()["results"]
    assert by_type[0]["id"] == "notes/mars-trip"
    assert {item["type"] for item in by_type} == {"note"}
    by_prefix = astronomy.get("/resources/search?q=mars&prefix=notes/").json()["results"]
    assert by_prefix and all(item["id"].startswith("notes/") for item in by_prefix)
    limited = astronomy.get("/resources/search?q=mars&limit=1").json()["results"]
    assert len(limited) == 1


def test_read_your_writes_create_update_delete(alice_client):
    add(alice_client, "r", "Quarterly report", "Revenue grew in the northern region.")
    assert alice_client.get("/resources/search?q=revenue").json()["results"][0]["id"] == "r"
    alice_client.put("/resources/r", {"content": "Churn fell after the pricing change."}, format="json")
    stale = alice_client.get("/resources/search?q=revenue").json()["results"]
    assert all("Revenue" not in item["snippet"] for item in stale)
    assert alice_client.get("/resources/search?q=churn").json()["results"][0]["id"] == "r"
    alice_client.delete("/resources/r")
    assert alice_client.get("/resources/search?q=churn").json()["results"] == []


def test_title_change_is_searchable(alice_client):
    add(alice_client, "t", "Old name", "")
    alice_client.put("/resources/t", {"title": "Zephyrine handbook"}, format="json")
    assert alice_client.get("/resources/search?q=zephyrine").json()["results"][0]["id"] == "t"


def test_missing_or_blank_q_is_400(alice_client):
    for url in ("/resources/search", "/resources/search?q=", "/resources/search?q=%20%20"):
        response = alice_client.get(url)
        assert response.status_code == 400
        assert response.json()["code"] == "validation_error"
        assert "q" in response.json()["details"]


@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "limit=101", "q=" + "x" * 1001])
def test_bad_search_parameters_are_400(alice_client, query):
    url = f"/resources/search?{query}" if query.startswith("q=") else f"/resources/search?q=mars&{query}"
    assert alice_client.get(url).status_code == 400


@pytest.mark.parametrize("query", ['"unclosed', "a & | ! b", "(((", "-", "mars:*", "'; drop table x; --"])
def test_odd_queries_never_fail(astronomy, query):
    response = astronomy.get("/resources/search", {"q": query})
    assert response.status_code == 200
    assert isinstance(response.json()["results"], list)


def test_small_tenant_gets_complete_results_among_large_ones(alice, charlie, settings):
    """Charlie's tenant is 'large' (above the exact-search threshold, so it uses the HNSW index);
    Alice's is small and is ranked exactly: her full top-k comes back although the index is full
    of Charlie's near-identical chunks."""
    settings.RESOURCES_EXACT_SEARCH_MAX_CHUNKS = 20
    for index in range(40):
        resource_create(tenant=charlie, resource_id=f"c/{index}", title=f"Volcano field notes {index}",
                        content=f"Notes on volcanoes and lava flows, site {index}.")  # fmt: skip
    for index in range(5):
        resource_create(tenant=alice, resource_id=f"a/{index}", title=f"Volcano diary {index}",
                        content=f"Lava and volcanoes, entry {index}.")  # fmt: skip
    from apps.resources.search import resource_search

    alice_hits = resource_search(tenant=alice, query="volcano lava", readable_prefixes=None, limit=10)
    assert sorted(hit.resource.path for hit in alice_hits) == [f"a/{index}" for index in range(5)]
    charlie_hits = resource_search(tenant=charlie, query="volcano lava", readable_prefixes=None, limit=10)
    assert len(charlie_hits) == 10
    assert all(hit.resource.path.startswith("c/") for hit in charlie_hits)
    # A filter that the index scan cannot satisfy falls back to the exact ranking.
    only_one = resource_search(
        tenant=charlie, query="volcano lava", readable_prefixes=["c/39"], limit=10, mode="meaning"
    )
    assert [hit.resource.path for hit in only_one] == ["c/39"]


@override_settings(RESOURCES_MIN_SIMILARITY=0.99)
def test_nothing_similar_and_no_words_gives_no_results(astronomy):
    assert astronomy.get("/resources/search?q=quantum chromodynamics").json()["results"] == []
