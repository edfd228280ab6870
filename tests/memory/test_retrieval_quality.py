"""Semantic query finds what was meant, not just the same words (data: data/retrieval_quality.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

DATA = json.loads((Path(__file__).parent / "data" / "retrieval_quality.json").read_text())


def test_the_data_set_is_big_enough():
    assert len(DATA["items"]) >= 30
    assert len(DATA["queries"]) >= 15
    assert all(query["target"] in DATA["items"] for query in DATA["queries"])


def test_paraphrased_queries_find_their_target_in_the_top_three(alice, alice_client, remember):
    remember(alice, DATA["items"])
    misses = []
    for case in DATA["queries"]:
        response = alice_client.post("/memory/query", {"query": case["query"], "limit": 3}, format="json")
        keys = [result["key"] for result in response.json()["results"]]
        if case["target"] not in keys:
            misses.append((case["query"], case["target"], keys))
    hit_rate = 1 - len(misses) / len(DATA["queries"])
    print(f"top-3 hit rate {hit_rate:.0%}; misses: {misses}")
    assert hit_rate >= 0.9, misses
